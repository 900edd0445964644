"""deploy.blue-green: the new release in the idle colour, then all traffic at once.

`nself deploy.blue-green prod` (the default task of this sub-collection of `deploy`) starts
it; `.switch`, `.rollback` and `.finish` continue it from any machine. See docs/deploy.md.
"""
from __future__ import annotations

from invoke import Collection, task

from nself import runtime

_ENV = "the environment: staging, production (prod), or one declared in nself.yml"


def _driver(c, environment):
    from nself.tasks.deploy import _driver as driver

    return driver(c, environment)


def _say(out, state) -> None:
    if state is not None:
        out.say(f"{state.env}: {state.strategy} {state.release} (old {state.stable or '-'}): {state.phase}, "
                f"{state.weight}% of traffic, since {state.updated}")


def _continue(c, environment, verb: str) -> None:
    """Run `nself.deploy.bluegreen.<verb>` on the environment and report the state it leaves."""
    from nself.deploy import bluegreen

    driver = _driver(c, environment)
    out = runtime.output(c)
    state = getattr(bluegreen, verb)(driver, echo=out.say)
    out.emit(state.to_dict(), render=lambda d: _say(out, state))


@task(positional=["environment"], help={"environment": _ENV, "release": "release id (default: git short sha)",
                                        "skip_build": "do not build images; deploy what the last build recorded"})
def start(c, environment, release=None, skip_build=False):
    """Deploy the new release to the idle colour and health-check it."""
    from nself.deploy import bluegreen
    from nself.tasks.deploy import _options, _run_build

    driver = _driver(c, environment)
    out = runtime.output(c)
    options = _options(c, driver, release, None, (), 8, False, skip_build)
    if runtime.options(c).dry_run:
        out.emit({"plan": {"title": f"blue-green {options.release.id} in {driver.project.env}", "steps": [
            {"summary": "start the release in the idle colour and health-check it"},
            {"summary": "wait for deploy.blue-green.switch"}]}},
            render=lambda d: [out.say(f"  {s['summary']}") for s in d["plan"]["steps"]])
        return
    if not skip_build:
        options = _run_build(c, driver, options)
    state = bluegreen.deploy(driver, options, echo=out.say)
    out.emit(state.to_dict(), render=lambda d: _say(out, state))


@task(positional=["environment"], help={"environment": _ENV})
def switch(c, environment):
    """Move all traffic to the new colour at once (the old one stays up)."""
    _continue(c, environment, "switch")


@task(positional=["environment"], help={"environment": _ENV})
def rollback(c, environment):
    """Switch back to the old colour (before a switch: remove the idle one)."""
    _continue(c, environment, "rollback")


@task(positional=["environment"], help={"environment": _ENV, "now": "stop the old colour now, whatever its age"})
def finish(c, environment, now=False):
    """Stop the old colour once deploy.blue_green_keep minutes have passed."""
    from nself.deploy import bluegreen

    driver = _driver(c, environment)
    out = runtime.output(c)
    state = bluegreen.finish(driver, echo=out.say, force=now)
    out.emit(state.to_dict() if state else {"env": driver.project.env, "finished": False},
             render=lambda d: _say(out, state))


ns = Collection("blue-green")
ns.add_task(start, default=True)
ns.add_task(switch)
ns.add_task(rollback)
ns.add_task(finish)
