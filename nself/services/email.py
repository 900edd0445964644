"""`service email test --to ADDR`: one test mail through the environment's SMTP settings.

The settings are the environment's variables (the .env cascade, so `.env.local` can point a
developer's machine at a published Mailpit port while the stack's services use `mailpit`):

    SMTP_HOST (required)   SMTP_PORT (default 25; 1025 is Mailpit's)
    SMTP_USER, SMTP_PASSWORD (AUTH when both are set; the password is a secret)
    SMTP_FROM (default nself@localhost)
    SMTP_SECURE: tls (implicit TLS), starttls, or none; default by port: 465 tls, 587 starttls, else none
"""
from __future__ import annotations

import smtplib
import socket
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage

from nself.errors import ConfigError, Exit, NselfError, UsageError

TIMEOUT = 15.0   # seconds for the connection and each SMTP command
_SECURE_BY_PORT = {465: "tls", 587: "starttls"}


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    secure: str
    sender: str
    user: str | None
    password: str | None   # never shown


def settings(variables: Mapping[str, str]) -> Smtp:
    """The SMTP settings from an environment's variables; ConfigError (exit 3) when unusable."""
    host = variables.get("SMTP_HOST", "").strip()
    if not host:
        raise ConfigError("SMTP_HOST is not set for this environment",
                          hint="`nself service email enable` sets it for the stack; from this machine set "
                               "SMTP_HOST and SMTP_PORT in .env.local")
    raw_port = variables.get("SMTP_PORT", "25").strip() or "25"
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        raise ConfigError(f"SMTP_PORT is not a port: {raw_port!r}", hint="set SMTP_PORT to a number, e.g. 587")
    port = int(raw_port)
    secure = (variables.get("SMTP_SECURE") or _SECURE_BY_PORT.get(port, "none")).strip().lower()
    if secure not in ("tls", "starttls", "none"):
        raise ConfigError(f"SMTP_SECURE must be tls, starttls or none, not {secure!r}",
                          hint="tls for port 465, starttls for 587")
    return Smtp(host, port, secure, variables.get("SMTP_FROM") or "nself@localhost",
                variables.get("SMTP_USER") or None, variables.get("SMTP_PASSWORD") or None)


def message(smtp: Smtp, to: str, project: str, env: str) -> EmailMessage:
    if "@" not in to or any(c in to for c in "\r\n ,;"):
        raise UsageError(f"{to!r} is not one mail address", hint="pass --to someone@example.com")
    mail = EmailMessage()
    mail["From"], mail["To"] = smtp.sender, to
    mail["Subject"] = f"nself test mail from {project} ({env})"
    mail["Message-ID"] = f"<{uuid.uuid4()}@nself>"
    mail.set_content(f"This is a test mail sent by `nself service email test` for {project} ({env}) "
                     f"through {smtp.host}:{smtp.port}.\n")
    return mail


def send(smtp: Smtp, mail: EmailMessage) -> dict:
    """Hand `mail` to the server; NselfError with the SMTP server's answer on failure."""
    where = f"{smtp.host}:{smtp.port}"
    try:
        client_class = smtplib.SMTP_SSL if smtp.secure == "tls" else smtplib.SMTP
        with client_class(smtp.host, smtp.port, timeout=TIMEOUT) as client:
            if smtp.secure == "starttls":
                client.starttls(context=ssl.create_default_context())
            if smtp.user and smtp.password:
                client.login(smtp.user, smtp.password)
            refused = client.send_message(mail)
    except smtplib.SMTPAuthenticationError as exc:
        raise NselfError(f"{where} refused the login of {smtp.user}: {exc.smtp_code}", code=Exit.PERMISSION,
                         hint="check SMTP_USER and SMTP_PASSWORD (.env.secrets)") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise NselfError(f"{where} refused the recipient: {_answer(exc.recipients)}", code=Exit.NETWORK,
                         hint="check the address, or the server's relay rules") from None
    except smtplib.SMTPException as exc:
        raise NselfError(f"{where}: SMTP failed: {exc}", code=Exit.NETWORK,
                         hint="check SMTP_SECURE (tls, starttls, none) and the server's log") from None
    except socket.gaierror:
        raise NselfError(f"cannot resolve SMTP_HOST {smtp.host!r}", code=Exit.NETWORK,
                         hint="a compose service name (mailpit) resolves only inside the stack: from this "
                              "machine set SMTP_HOST/SMTP_PORT in .env.local to a published port") from None
    except (OSError, TimeoutError) as exc:
        raise NselfError(f"cannot reach the SMTP server at {where}: {exc.strerror or exc}", code=Exit.NETWORK,
                         hint="is the server (or `nself service email status`) up, and the port right?") from None
    return {"to": mail["To"], "from": mail["From"], "subject": mail["Subject"], "message_id": mail["Message-ID"],
            "server": where, "secure": smtp.secure, "login": bool(smtp.user and smtp.password),
            "refused": sorted(refused)}


def _answer(recipients: dict) -> str:
    return "; ".join(f"{r}: {code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
                     for r, (code, text) in recipients.items())
