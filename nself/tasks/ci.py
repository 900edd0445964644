"""ci: a CI pipeline that validates, generates and deploys the project (docs/ci.md)."""
from __future__ import annotations

from invoke import Collection, task

from nself import runtime


@task(positional=["platform"],
      help={"platform": "github (GitHub Actions) or gitlab (GitLab CI)",
            "deploy": "also deploy this environment from --branch (nself deploy.to ENV)",
            "branch": "the branch that deploys (default main)",
            "force": "replace a pipeline file that differs"})
def init(c, platform, deploy=None, branch="main", force=False):
    """Write a CI pipeline: install nself, validate, generate, deploy."""
    from nself import __version__, ci
    from nself.errors import UsageError
    from nself.plan import LocalRunner, Plan, emit, put, run

    out = runtime.output(c)
    ci.platform_of(platform)
    project = runtime.load(c, env=deploy) if deploy else runtime.load(c)
    target = None
    if deploy:
        from nself.deploy.targets import resolve
        from nself.remote import inventory

        target = resolve(project, inventory.load(project.root)).kind
    pipeline = ci.render(platform, __version__, project.env if deploy else None, target, branch)
    path = project.root / pipeline.path
    if path.is_file() and path.read_text() != pipeline.text and not force:
        raise UsageError(f"{pipeline.path} exists and differs from what nself would write",
                         hint="pass --force to replace it (your edits are lost), or edit it by hand")
    plan = Plan(f"write the {platform} pipeline", [run("make its folder", "mkdir", "-p", str(path.parent)),
                                                   put(f"write {pipeline.path}", str(path), pipeline.text)])
    if runtime.options(c).dry_run:
        emit(out, plan)
        return
    plan.run(LocalRunner())
    secrets = [s for s in (ci.SECRETS.get(target or ""), ci.SECRETS["env"]) if s]
    out.emit({"platform": platform, "path": pipeline.path, "deploy": project.env if deploy else None,
              "secrets": secrets}, render=lambda d: out.say(
        f"wrote {d['path']}" + (f"; set the CI secrets {', '.join(secrets)} (deploys {d['deploy']} from {branch})"
                                if deploy else "") + "; check it with `nself ci validate`"))


@task(help={"schema": "GitLab CI JSON schema file (default: the copy check-jsonschema ships)"})
def validate(c, schema=None):
    """Check the project's CI files with actionlint and GitLab's CI schema."""
    from nself import ci
    from nself.errors import ConfigError, UsageError
    from nself.project import find_root

    out = runtime.output(c)
    root = runtime.options(c).root or find_root()
    files = ci.found(root) if root is not None else []
    if not files:
        raise UsageError("no CI files here (.github/workflows/*.yml, .gitlab-ci.yml)",
                         hint="`nself ci init github` or `nself ci init gitlab` writes one")
    report = [{"path": str(p.relative_to(root)), "platform": platform, "problems": ci.lint(platform, p, schema)}
              for platform, p in files]
    out.emit({"ok": not any(r["problems"] for r in report), "files": report}, render=lambda d: [
        out.say(f"{r['path']}: " + ("ok" if not r["problems"] else f"{len(r['problems'])} problem(s)"))
        or [out.say(f"  {p}") for p in r["problems"]] for r in d["files"]])
    bad = [r["path"] for r in report if r["problems"]]
    if bad:
        raise ConfigError("the CI files have problems: " + ", ".join(bad), hint="fix the lines named above",
                          reported=True)


ns = Collection("ci", init, validate)
