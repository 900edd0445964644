"""`service admin password`: rotate NSELF_ADMIN_PASSWORD in .env.secrets, printed only with --show."""
from __future__ import annotations

import stat

from tests.services.test_enable import new_project


def secret(root) -> str:
    return (root / ".env.secrets").read_text().split("NSELF_ADMIN_PASSWORD=")[1].split("\n")[0]


def test_rotate_replaces_the_value_in_place_and_prints_it_only_with_show(nself, tmp_path):
    root = new_project(nself, tmp_path)
    assert nself(["service", "admin", "password"], cwd=root).code == 2   # not enabled
    assert nself(["service", "admin", "enable"], cwd=root).code == 0
    first = secret(root)
    lines = (root / ".env.secrets").read_text().splitlines()
    r = nself(["service", "admin", "password", "--json"], cwd=root)
    assert r.code == 0, r.err
    second = secret(root)
    assert second != first and len(second) == 48 and second not in r.out + r.err and "password" not in r.json()
    after = (root / ".env.secrets").read_text().splitlines()
    assert [a for a, b in zip(lines, after) if a != b] == [f"NSELF_ADMIN_PASSWORD={first}"]   # one line changed
    assert stat.S_IMODE((root / ".env.secrets").stat().st_mode) == 0o600
    r = nself(["service", "admin", "password", "--show", "--json"], cwd=root)
    assert r.code == 0 and r.json()["password"] == secret(root) != second
    assert nself(["config.validate"], cwd=root).code == 0
