"""`service email test` against a real SMTP server (aiosmtpd on loopback)."""
from __future__ import annotations

import email
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.services.test_enable import new_project

PASSWORD = "s3cret-smtp-password"


class Inbox:
    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.mails.append((envelope.mail_from, envelope.rcpt_tos, email.message_from_bytes(envelope.content),
                           session.authenticated))
        return "250 OK"


def _authenticate(server, session, envelope, mechanism, auth_data):
    # handled=False: aiosmtpd answers 535 itself (without it a refused login gets no answer)
    return AuthResult(success=auth_data.login == b"app" and auth_data.password == PASSWORD.encode(), handled=False)


def free_port() -> int:
    with socket.socket() as probe:   # a port nothing listens on (until someone binds it)
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=_authenticate,
                            auth_require_tls=False, ready_timeout=10)
    controller.start()
    yield inbox, port
    controller.stop()


def point_at(root, port, **more):
    lines = ["SMTP_HOST=127.0.0.1", f"SMTP_PORT={port}", *(f"{k}={v}" for k, v in more.items())]
    (root / ".env.local").write_text("\n".join(lines) + "\n")


def test_the_mail_arrives_from_the_configured_sender(nself, tmp_path, smtp_server):
    inbox, port = smtp_server
    root = new_project(nself, tmp_path, "mailpit=true")
    point_at(root, port, SMTP_FROM="noreply@app.test")
    r = nself(["service", "email", "test", "--to", "dev@app.test", "--json"], cwd=root)
    assert r.code == 0, r.err
    [(sender, rcpts, mail, authenticated)] = inbox.mails
    assert (sender, rcpts) == ("noreply@app.test", ["dev@app.test"]) and not authenticated
    assert mail["Subject"] == "nself test mail from app (local)" and mail["Message-ID"] == r.json()["message_id"]


def test_login_uses_the_secret_password_and_a_wrong_one_is_refused_unprinted(nself, tmp_path, smtp_server):
    inbox, port = smtp_server
    root = new_project(nself, tmp_path)
    point_at(root, port, SMTP_USER="app")
    with open(root / ".env.secrets", "a") as handle:
        handle.write(f"SMTP_PASSWORD={PASSWORD}\n")
    r = nself(["service", "email", "test", "--to", "dev@app.test"], cwd=root)
    assert r.code == 0, r.err
    assert inbox.mails[-1][3] is True and PASSWORD not in r.out + r.err

    (root / ".env.secrets").write_text((root / ".env.secrets").read_text().replace(PASSWORD, "wrong-password-x"))
    r = nself(["service", "email", "test", "--to", "dev@app.test", "--json"], cwd=root)
    assert r.code == 7 and "refused the login" in r.out + r.err and "wrong-password-x" not in r.out + r.err
    assert len(inbox.mails) == 1


def test_unreachable_server_unset_host_and_bad_address_fail_cleanly(nself, tmp_path):
    root = new_project(nself, tmp_path)
    free = free_port()
    r = nself(["service", "email", "test", "--to", "dev@app.test"], cwd=root)
    assert r.code == 3 and "SMTP_HOST is not set" in r.err
    point_at(root, free)
    r = nself(["service", "email", "test", "--to", "dev@app.test"], cwd=root)
    assert r.code == 6 and "cannot reach the SMTP server" in r.err
    r = nself(["service", "email", "test", "--to", "not an address"], cwd=root)
    assert r.code == 2 and "Traceback" not in r.err
