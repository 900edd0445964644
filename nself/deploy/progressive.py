"""Walking a canary through its steps, on any target, resumable at every step.

The driver supplies the traffic verbs (`Driver.canary_*`: start the new release beside the
stable one, set the canary's weight, read the router's access log, make the canary the
stable release, abort) and keeps the `CanaryState` in the environment. `walk()` runs steps
until a pause that waits for promote (or, without `auto`, after each weight), the end
(promoted), or a failed analysis (aborted); the state is saved after every step, so a
killed command leaves a state that `status`, `promote` and `rollback` continue from.
Clock and sleep are injected (tests and dry runs stay pure).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from nself.deploy import analysis, canary
from nself.deploy.canary import CanaryState
from nself.errors import Exit, NselfError


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class Clock:
    """now() → UTC ISO time; epoch() → seconds; sleep(seconds)."""

    now: Callable[[], str] = utc_now
    epoch: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


SYSTEM_CLOCK = Clock()


def walk(driver, state: CanaryState, *, auto: bool, limits: analysis.Thresholds,
         clock: Clock = SYSTEM_CLOCK, say: Callable[[str], None] = lambda _: None) -> CanaryState:
    """Run steps from `state.step` on; returns the state it stopped in (saved)."""
    step_started = clock.epoch()
    while not state.done:
        step = state.next_step()
        if step is None:
            return _finish(driver, state, clock, say)
        if step.weight is not None:
            say(f"{state.env}: canary {state.release} at {step.weight}%")
            driver.canary_weight(state, step.weight)
            step_started = clock.epoch()
            state = canary.advanced(state, clock.now(), weight=step.weight)
            if step.weight == 100:
                return _finish(driver, state, clock, say)
            if not auto and not _next_is_promote_pause(state):
                state = _pause(driver, state, clock, say)
                return state
        elif step.analysis:
            verdict = _analyse(driver, state, step.analysis, step_started, limits, clock)
            record = {"analysis": step.analysis, "at": clock.now(), **verdict.to_dict()}
            say(f"{state.env}: analysis {step.analysis}: {verdict.result} ({verdict.reason})")
            if verdict.result != "passed":
                state = replace(state, analyses=state.analyses + (record,))
                return abort(driver, state, f"analysis {step.analysis} {verdict.result}: {verdict.reason}",
                             clock, say)
            state = canary.advanced(state, clock.now(), analysis=record)
        elif step.until_promote:
            return _pause(driver, state, clock, say)
        else:
            if not auto:
                return _pause(driver, state, clock, say)
            say(f"{state.env}: waiting {step.pause}s")
            clock.sleep(step.pause)
            state = canary.advanced(state, clock.now())
        driver.canary_save(state)
    return state


def _next_is_promote_pause(state: CanaryState) -> bool:
    nxt = state.next_step()
    return nxt is not None and nxt.until_promote


def _pause(driver, state: CanaryState, clock: Clock, say) -> CanaryState:
    """Stop and wait for `deploy.canary.promote`: the pause step (if it is one) is consumed."""
    nxt = state.next_step()
    consumes = nxt is not None and nxt.weight is None and nxt.analysis is None
    paused = canary.advanced(state, clock.now(), paused=True) if consumes else \
        replace(state, phase="paused", updated=clock.now())
    driver.canary_save(paused)
    say(f"{state.env}: canary {state.release} at {paused.weight}%, paused: "
        f"`nself deploy.canary.promote {state.env}` to go on, `nself deploy.canary.rollback {state.env}` to abort")
    return paused


def _analyse(driver, state: CanaryState, name: str, since: float, limits, clock: Clock):
    """Wait until enough canary requests are logged (up to the analysis window), then judge."""
    deadline = clock.epoch() + max(limits.window, 1)
    while True:
        try:
            requests = driver.canary_requests(state, since)
        except NselfError as exc:      # unreadable, unreachable or not configured: never promote on it
            hint = f" ({exc.hint})" if exc.hint else ""
            return analysis.Verdict("failed", 0, None, None, f"no canary requests to judge: {exc.message}{hint}")
        verdict = analysis.judge(requests, limits)
        if verdict.result != "inconclusive" or clock.epoch() >= deadline:
            return verdict
        clock.sleep(limits.interval)


def _finish(driver, state: CanaryState, clock: Clock, say) -> CanaryState:
    driver.canary_promote(state)
    done = canary.completed(state, clock.now())
    driver.canary_save(done)
    say(f"{state.env}: release {state.release} promoted to 100%")
    return done


def abort(driver, state: CanaryState, reason: str, clock: Clock = SYSTEM_CLOCK, say=lambda _: None) -> CanaryState:
    """All traffic back to the stable release, the canary removed; the reason is recorded."""
    driver.canary_abort(state)
    stopped = canary.aborted(state, clock.now(), reason)
    driver.canary_save(stopped)
    say(f"{state.env}: canary {state.release} aborted ({reason}); 100% on {state.stable}")
    return stopped


def running(driver) -> CanaryState:
    """The environment's canary in progress; NselfError (exit 1) when there is none (a
    blue-green in progress is named: the canary verbs do not act on it)."""
    state = driver.canary_load()
    env = driver.project.env
    if state is not None and not state.done and state.strategy != "canary":
        raise busy(state, env, "a canary command")
    if state is None or state.done:
        raise NselfError(f"no canary is running in {env}", code=Exit.GENERAL,
                         hint=f"start one with `nself deploy.canary {env}`")
    return state


def busy(state: CanaryState, env: str, what: str) -> NselfError:
    """`what` refused while a canary or blue-green is in progress, with the commands that end it."""
    if state.strategy == "canary":
        ends = f"`nself deploy.canary.promote {env}` or `nself deploy.canary.rollback {env}`"
    elif state.phase == "switched":
        ends = f"`nself deploy.blue-green.finish {env} --now` or `nself deploy.blue-green.rollback {env}`"
    else:
        ends = f"`nself deploy.blue-green.switch {env}` or `nself deploy.blue-green.rollback {env}`"
    return NselfError(f"{env}: {what} is refused while the {state.strategy} of release {state.release} "
                      f"is in progress ({state.weight}%, {state.phase} since {state.updated})", code=Exit.GENERAL,
                      hint=f"finish it first: {ends}")


def start(driver, options, steps, *, auto: bool, limits: analysis.Thresholds, clock: Clock = SYSTEM_CLOCK,
          echo: Callable[[str], None] = lambda _: None) -> CanaryState:
    """`deploy.canary ENV`: refuse while another canary runs, then under the lock: pre-deploy
    hooks, the new release beside the stable one, and the steps until the first stop."""

    env = driver.project.env
    existing = driver.canary_load()
    if existing is not None and not existing.done:
        raise busy(existing, env, "a new canary")
    record, lock, stable = launch(driver, options, "canary", echo)
    try:
        state = canary.start(env, options.release.id, stable, steps, clock.now())
        driver.canary_save(state)
        return _settle(driver, walk(driver, state, auto=auto, limits=limits, clock=clock, say=echo), record, echo)
    finally:
        lock.release()


def launch(driver, options, strategy: str, echo: Callable[[str], None]):
    """Take the lock, run the pre-deploy hooks and start the new release beside the stable one
    (canary or idle colour); returns (audit record, lock, stable release). The caller releases
    the lock; it is released here when starting fails."""
    from nself.deploy import core, hooks

    stable = driver.current()
    record = core.new_record(driver, strategy, stable, options.release.id)
    lock = core.locked(driver, record, strategy)
    try:
        env = hooks.hook_env(driver.project.env, options.release.id, stable, strategy)
        core.run_hooks(driver.project, "pre-deploy", env, echo)
        driver.canary_start(replace(options, strategy=strategy))
    except BaseException:
        lock.release()
        raise
    return record, lock, stable


def promote(driver, *, full: bool, auto: bool, limits: analysis.Thresholds, clock: Clock = SYSTEM_CLOCK,
            echo: Callable[[str], None] = lambda _: None) -> CanaryState:
    """`deploy.canary.promote ENV`: the next steps (or, with `full`, 100 % at once)."""
    from nself.deploy import core

    state = running(driver)
    record = core.new_record(driver, "canary", state.stable, state.release)
    lock = core.locked(driver, record, "canary promote")
    try:
        if full:
            return _settle(driver, _finish(driver, state, clock, echo), record, echo)
        state = canary.resumed(state, clock.now())
        return _settle(driver, walk(driver, state, auto=auto, limits=limits, clock=clock, say=echo), record, echo)
    finally:
        lock.release()


def rollback(driver, *, clock: Clock = SYSTEM_CLOCK, echo: Callable[[str], None] = lambda _: None) -> CanaryState:
    """`deploy.canary.rollback ENV`: abort — 100 % back to stable, the canary removed."""
    from nself.deploy import core

    state = running(driver)
    record = core.new_record(driver, "canary", state.stable, state.release)
    lock = core.locked(driver, record, "canary rollback")
    try:
        return _settle(driver, abort(driver, state, "rolled back by hand", clock, echo), record, echo)
    finally:
        lock.release()


def _settle(driver, state: CanaryState, record: dict, echo) -> CanaryState:
    """When the canary ended, its hooks and its audit record (a paused canary has neither yet)."""
    from nself.deploy import core, hooks

    if not state.done:
        return state
    env = hooks.hook_env(state.env, state.release, state.stable, "canary")
    record.update(result="ok" if state.phase == "promoted" else "aborted", weight=state.weight,
                  analyses=list(state.analyses))
    try:
        core.run_hooks(driver.project, "post-deploy" if state.phase == "promoted" else "on-failure", env, echo)
    finally:
        core.audit(driver, record)
    return state
