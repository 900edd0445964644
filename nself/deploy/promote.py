"""deploy.promote: the release an environment runs, checked, as the next one's release.

The source's last deploy record names the release and its images (by digest where the build
pushed them); the destination gets exactly those. Refused (exit 1) when the source has no
successful deploy on record, or when its services are not healthy now, unless --skip-tests.
"""
from __future__ import annotations

from nself.deploy.core import Driver, read_local
from nself.deploy.release import Release
from nself.errors import NselfError


def last_success(driver: Driver) -> dict | None:
    """The newest successful deploy record of the driver's environment (its own log, else this
    machine's)."""
    try:
        records = driver.history()
    except NselfError:
        records = read_local(driver.project.root, driver.project.env)
    done = [r for r in records if r.get("result") == "ok" and r.get("strategy") != "rollback"]
    return done[-1] if done else None


def promoted_release(source: Driver, skip_tests: bool) -> Release:
    env = source.project.env
    record = last_success(source)
    if record is None or not record.get("to"):
        raise NselfError(f"{env} has no successful deploy to promote",
                         hint=f"deploy it first: `nself deploy.to {env}`")
    live = source.current()
    if live and live != record["to"]:
        raise NselfError(f"{env} runs {live}, not its last deployed release {record['to']} (rolled back?)",
                         hint=f"deploy the release you want in {env} first, then promote")
    if not skip_tests:
        report = source.check()
        if not report.get("healthy"):
            bad = sorted({s.get("service") for s in report.get("services", []) if not s.get("healthy")})
            raise NselfError(f"{env} is not healthy ({', '.join(bad)}): refusing to promote release {record['to']}",
                             hint=f"fix {env} first (`nself deploy.check {env}`), or pass --skip-tests")
    return Release(record["to"], record.get("images") or {})
