"""doctor: check what this project needs on this machine, each problem with its fix."""
from __future__ import annotations

from invoke import task

from nself import runtime


@task
def doctor(c):
    """Check this machine for what the project needs, each with a fix."""
    from nself import doctor as checks
    from nself.errors import NselfError
    from nself.project import find_root

    out = runtime.output(c)
    results = checks.run(runtime.options(c).root or find_root())
    failed = [r.name for r in results if r.required and not r.ok]
    report = {"ok": not failed, "checks": [r.to_dict() for r in results]}

    def render(doc):
        out.table(["state", "check", "required", "detail", "fix"],
                  [["ok" if r["ok"] else ("FAIL" if r["required"] else "warn"), r["name"],
                    "yes" if r["required"] else "no", r["detail"], r["fix"]] for r in doc["checks"]])
    out.emit(report, render=render)
    if failed:
        raise NselfError("required checks failed: " + ", ".join(failed), hint="apply the fix shown for each",
                         reported=True)
