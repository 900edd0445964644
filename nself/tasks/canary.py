"""deploy.canary: send a share of traffic to the new release, step by step, gated by analysis.

`nself deploy.canary prod` starts it (mounted under `deploy` as the `canary` sub-collection,
whose default task this is); `deploy.canary.promote`, `.rollback` and `.status` continue it
from any machine, because the canary's state lives in the environment. See docs/deploy.md.
"""
from __future__ import annotations

from invoke import Collection, task

from nself import runtime

_ENV = "the environment: staging, production (prod), or one declared in nself.yml"


def _driver(c, environment):
    from nself.tasks.deploy import _driver as driver

    return driver(c, environment)


def _limits(driver, name: str | None):
    """Thresholds of the named analysis (nself.yml deploy.canary.analysis.<name>), else defaults."""
    from nself.deploy.analysis import Thresholds

    settings = driver.project.settings
    analyses = (settings.section("deploy", "canary", "analysis") if settings else None) or {}
    return Thresholds.from_settings(analyses.get(name) if name else None)


def _render(out, state) -> None:
    out.say(f"{state.env}: canary {state.release} (stable {state.stable or '-'}) at {state.weight}%, "
            f"{state.phase}, step {min(state.step + 1, len(state.steps))}/{len(state.steps)}, since {state.updated}")
    for result in state.analyses:
        out.say("  " + ", ".join(f"{k} {v}" for k, v in result.items()))


@task(positional=["environment"], help={
    "environment": _ENV, "percent": "the canary's share of traffic (1–100, default 10)",
    "steps": "weights to walk, e.g. 10,25,50,100 (default: deploy.canary.steps in nself.yml, else --percent)",
    "pause": "wait between weights, e.g. 5m (default: until deploy.canary.promote)",
    "analysis": "analysis gating each step (deploy.canary.analysis.<NAME> in nself.yml)",
    "auto": "walk the steps by itself; a failing analysis aborts", "release": "release id (default: git short sha)",
    "skip_build": "do not build images; deploy what the last build recorded"})
def start(c, environment, percent=None, steps=None, pause=None, analysis=None, auto=False, release=None,
          skip_build=False):
    """Run the new release beside the stable one with a share of traffic."""
    from nself.deploy import progressive
    from nself.tasks.deploy import _options, _run_build

    driver = _driver(c, environment)
    out = runtime.output(c)
    schedule = _schedule(driver, percent, steps, pause, analysis)
    options = _options(c, driver, release, None, (), 8, False, skip_build)
    if runtime.options(c).dry_run:
        out.emit({"plan": {"title": f"canary {options.release.id} in {driver.project.env}",
                           "steps": [s.to_dict() for s in schedule]}},
                 render=lambda d: [out.say(f"  {i}. {s.describe()}") for i, s in enumerate(schedule, 1)])
        return
    if not skip_build:
        options = _run_build(c, driver, options)
    state = progressive.start(driver, options, schedule, auto=auto, limits=_limits(driver, analysis), echo=out.say)
    out.emit(state.to_dict(), render=lambda d: _render(out, state))
    _fail_if_aborted(state)


def _schedule(driver, percent, steps, pause, analysis):
    from nself.deploy import canary

    settings = driver.project.settings
    configured = settings.section("deploy", "canary") if settings else None
    names = list(((configured or {}).get("analysis") or {}))
    if percent is None and steps is None and configured and configured.get("steps"):
        return canary.from_data(configured["steps"], names)
    if analysis and analysis not in names and analysis != "http":
        from nself.errors import UsageError

        raise UsageError(f"no analysis named {analysis!r}",
                         hint="declare it under deploy.canary.analysis in nself.yml (docs/deploy.md, Canary), "
                              "or use the built-in `http` (the router's access log, default thresholds)")
    return canary.from_flags(percent, steps, pause, analysis)


def _fail_if_aborted(state) -> None:
    from nself.errors import NselfError

    if state.phase == "aborted":
        raise NselfError(f"{state.env}: the canary of {state.release} was aborted: "
                         f"{state.analyses[-1].get('abort') if state.analyses else ''}", reported=True,
                         hint=f"100% is back on {state.stable}; see `nself deploy.history {state.env}`")


@task(positional=["environment"], help={"environment": _ENV, "full": "skip the remaining steps: 100% now",
                                        "auto": "walk the remaining steps by themselves",
                                        "analysis": "analysis thresholds to use (deploy.canary.analysis.<NAME>)"})
def promote(c, environment, full=False, auto=False, analysis=None):
    """Move the running canary to its next step (or to 100% with --full)."""
    from nself.deploy import progressive

    driver = _driver(c, environment)
    out = runtime.output(c)
    state = progressive.promote(driver, full=full, auto=auto, limits=_limits(driver, analysis), echo=out.say)
    out.emit(state.to_dict(), render=lambda d: _render(out, state))
    _fail_if_aborted(state)


@task(positional=["environment"], help={"environment": _ENV})
def rollback(c, environment):
    """Abort the running canary: all traffic back to the stable release."""
    from nself.deploy import progressive

    driver = _driver(c, environment)
    out = runtime.output(c)
    state = progressive.rollback(driver, echo=out.say)
    out.emit(state.to_dict(), render=lambda d: _render(out, state))


@task(positional=["environment"], help={"environment": _ENV, "watch": "print again on every change until Ctrl-C",
                                        "interval": "seconds between reads with --watch (default 2)"})
def status(c, environment, watch=False, interval=2.0):
    """Show the running canary's step, weights and analysis results."""
    import time

    driver = _driver(c, environment)
    out = runtime.output(c)
    state = driver.canary_load()
    if not watch:
        out.emit(state.to_dict() if state else {"env": driver.project.env, "phase": None},
                 render=lambda d: _render(out, state) if state else out.say(f"no canary in {driver.project.env}"))
        return
    last = None
    try:
        while True:
            if state != last:
                if out.json_mode:
                    out.event(state.to_dict() if state else {})
                elif state:
                    _render(out, state)
                last = state
            if state is None or state.done:
                return
            time.sleep(float(interval))
            state = driver.canary_load()
    except KeyboardInterrupt:
        return


ns = Collection("canary")
ns.add_task(start, default=True)
ns.add_task(promote)
ns.add_task(rollback)
ns.add_task(status)
