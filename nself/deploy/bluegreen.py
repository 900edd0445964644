"""Blue-green on any target, with the canary's verbs and state (see progressive.py).

`deploy()` runs the new release in the idle colour beside the live one (the driver health-checks
it there and names its preview address) and stops. `switch()` moves all traffic at once; the
old colour keeps running so `rollback()` can switch straight back. `finish()` stops the old
colour once it is older than `deploy.blue_green_keep` minutes (default 30); every new
deploy, canary or blue-green finishes an expired one first, so nothing runs two colours forever.
"""
from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from dataclasses import replace

from nself.deploy import canary, core, hooks
from nself.deploy.canary import CanaryState, CanaryStep
from nself.deploy.progressive import SYSTEM_CLOCK, Clock, busy, launch
from nself.errors import Exit, NselfError

DEFAULT_KEEP_MINUTES = 30


def keep_seconds(settings) -> int:
    value = settings.section("deploy", "blue_green_keep") if settings is not None else None
    return int(value if value is not None else DEFAULT_KEEP_MINUTES) * 60


def deploy(driver, options, *, clock: Clock = SYSTEM_CLOCK,
           echo: Callable[[str], None] = lambda _: None) -> CanaryState:
    """Run the new release in the idle colour (health-checked by the driver), no traffic yet."""
    env = driver.project.env
    existing = driver.canary_load()
    if existing is not None and existing.phase == "switched":
        finish(driver, clock=clock, echo=echo, force=True)
    elif existing is not None and not existing.done:
        raise busy(existing, env, "a new blue-green deploy")
    record, lock, stable = launch(driver, options, "blue-green", echo)
    try:
        state = replace(canary.start(env, options.release.id, stable, [CanaryStep(weight=100)], clock.now()),
                        phase="paused", strategy="blue-green")
        driver.canary_save(state)
        echo(f"{env}: release {options.release.id} is up in the idle colour, taking no traffic; "
             f"`nself deploy.blue-green.switch {env}` moves all traffic to it")
        return state
    finally:
        lock.release()


def _current(driver, phases: tuple[str, ...], verb: str) -> CanaryState:
    state = driver.canary_load()
    env = driver.project.env
    if state is not None and not state.done and state.strategy != "blue-green":
        raise busy(state, env, f"blue-green {verb}")
    if state is None or state.done:
        raise NselfError(f"no blue-green deploy in {env} to {verb}", code=Exit.GENERAL,
                         hint=f"start one with `nself deploy.blue-green {env}`")
    if state.phase not in phases:
        switched = state.phase == "switched"
        raise NselfError(f"cannot {verb} the blue-green of release {state.release} in {env}: it is "
                         + ("switched already" if switched else "not switched yet"), code=Exit.GENERAL,
                         hint=f"`nself deploy.blue-green.finish {env} --now`" if switched
                         else f"`nself deploy.blue-green.switch {env}`")
    return state


def switch(driver, *, clock: Clock = SYSTEM_CLOCK, echo: Callable[[str], None] = lambda _: None) -> CanaryState:
    """All traffic to the new colour at once; the old one stays up for rollback."""
    state = _current(driver, ("paused",), "switch")
    record = core.new_record(driver, "blue-green", state.stable, state.release)
    lock = core.locked(driver, record, "blue-green switch")
    try:
        driver.canary_weight(state, 100)
        switched = replace(state, weight=100, step=1, phase="switched", updated=clock.now())
        driver.canary_save(switched)
        record.update(result="ok")
        env = hooks.hook_env(state.env, state.release, state.stable, "blue-green")
        try:
            core.run_hooks(driver.project, "post-deploy", env, echo)
        finally:
            core.audit(driver, record)
        echo(f"{state.env}: all traffic on {state.release}; {state.stable or 'the old colour'} kept for rollback")
        return switched
    finally:
        lock.release()


def rollback(driver, *, clock: Clock = SYSTEM_CLOCK, echo: Callable[[str], None] = lambda _: None) -> CanaryState:
    """Switch back to the old colour (or, before a switch, remove the idle one)."""
    state = _current(driver, ("paused", "switched"), "roll back")
    record = core.new_record(driver, "rollback", state.release, state.stable)
    lock = core.locked(driver, record, "blue-green rollback")
    try:
        driver.canary_abort(state)
        stopped = canary.aborted(state, clock.now(), "rolled back by hand")
        driver.canary_save(stopped)
        record.update(result="ok")
        core.run_hooks(driver.project, "on-rollback",
                       hooks.hook_env(state.env, state.stable or "", state.release, "blue-green"), echo)
        core.audit(driver, record)
        echo(f"{state.env}: all traffic back on {state.stable}; {state.release} removed")
        return stopped
    finally:
        lock.release()


def finish(driver, *, clock: Clock = SYSTEM_CLOCK, echo: Callable[[str], None] = lambda _: None,
           force: bool = False) -> CanaryState | None:
    """Stop the old colour when the switch is older than the keep time (or `force`)."""
    state = _current(driver, ("switched",), "finish")
    age = clock.epoch() - calendar.timegm(time.strptime(state.updated, "%Y-%m-%dT%H:%M:%SZ"))
    keep = keep_seconds(driver.project.settings)
    if not force and age < keep:
        echo(f"{state.env}: the old colour stays up for {int(keep - age)}s more (deploy.blue_green_keep)")
        return None
    driver.canary_promote(state)
    done = canary.completed(state, clock.now())
    driver.canary_save(done)
    echo(f"{state.env}: the old colour of {state.stable} stopped")
    return done
