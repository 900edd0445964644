"""monitor: Prometheus, Grafana and the stack's exporters: status, enable, profile minimal|standard|full."""
from __future__ import annotations

from invoke import Collection, task

from nself import runtime
from nself.tasks.env import _root


@task
def status(c):
    """Show the monitoring profile and whether each part runs (--env)."""
    from nself.errors import Exit, NselfError
    from nself.services import monitor
    from nself.services import status as probe

    out = runtime.output(c)
    project = runtime.load(c)
    parts = []
    for name in monitor.present(project.root):
        svc = monitor.COMPONENTS[name]
        rows = probe.local(project.name, svc) if project.env == "local" else probe.remote(project, svc, out)
        parts.append(probe.summary(svc, project.env, True, rows))
    doc = {"environment": project.env, "profile": monitor.current_profile(project.root), "components": parts}

    def render(d):
        out.say(f"monitoring in {d['environment']}: profile {d['profile'] or 'none (`nself monitor enable`)'}")
        out.table(["component", "running", "healthy", "url"],
                  [[p["service"], "yes" if p["running"] else "no",
                    {True: "yes", False: "no", None: "-"}[p["healthy"]], p["url"]] for p in d["components"]])
    out.emit(doc, render=render)
    down = [p["service"] for p in parts if not p["running"] or p["healthy"] is False]
    if down:
        raise NselfError(f"monitoring in {project.env}: not running or unhealthy: {', '.join(down)}",
                         code=Exit.RUNTIME, reported=True,
                         hint="`nself monitor status --json` shows each container; is the stack up?")


@task
def enable(c):
    """Add monitoring with the minimal profile (Prometheus, Grafana)."""
    from nself.services import monitor

    out = runtime.output(c)
    doc = monitor.enable(_root(c), env=runtime.options(c).env)
    out.emit(doc, render=lambda d: _say(out, d))


@task(positional=["level"], help={"level": "minimal (Prometheus, Grafana), standard (+ node and PostgreSQL "
                                            "exporters) or full (+ cAdvisor, Alertmanager)"})
def profile(c, level):
    """Switch the monitoring profile (exporters, scrape configuration)."""
    from nself.services import monitor

    out = runtime.output(c)
    doc = monitor.set_profile(_root(c), level, env=runtime.options(c).env)
    out.emit(doc, render=lambda d: _say(out, d))


def _say(out, d: dict) -> None:
    out.say(f"monitoring profile {d['profile']}: {', '.join(d['components'])}")
    if d["added"] or d["removed"]:
        out.say(f"added: {', '.join(d['added']) or '-'}; removed: {', '.join(d['removed']) or '-'}; "
                f"changed: {', '.join(d['files'])}")
    if d["secrets"]:
        out.say(f"new secrets in .env.secrets (0600, not shown): {', '.join(d['secrets'])}")


ns = Collection("monitor", status, enable, profile)
