"""Canary schedules and state: the data behind `deploy.canary` (pure; no clock, no I/O).

A schedule is a list of steps in Argo Rollouts' vocabulary: `{weight: N}` sends N % of
traffic to the canary, `{pause: 5m}` waits that long, `{pause: {}}` waits for
`deploy.canary.promote`, `{analysis: NAME}` runs an analysis and aborts the canary when it
fails. From the command line, `--steps "10,25,50,100"` means weights with a `--pause` between
them (none: wait for promote), and `--percent 10` alone means one step of 10 %.

The state of a running canary (`CanaryState`) lives in the environment (a file next to the
lock on ssh targets, a ConfigMap on Kubernetes), so status, promote and rollback work from
another machine or after the command died. Times are UTC ISO-8601 strings given by the caller.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

from nself.errors import UsageError

_DURATION = re.compile(r"^(\d+)(s|m|h)?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, None: 1}
PHASES = ("progressing", "paused", "switched", "promoted", "aborted")   # switched: blue-green only


def duration(text: str | int | float) -> int:
    """Seconds from `90`, `90s`, `5m` or `1h`; UsageError (exit 2) otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text >= 0:
        return int(text)
    match = _DURATION.match(str(text).strip())
    if not match:
        raise UsageError(f"{text!r} is not a duration", hint="use seconds, or 30s, 5m, 1h")
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class CanaryStep:
    """One step: exactly one of weight (1–100), pause (seconds; None = until promote), analysis."""

    weight: int | None = None
    pause: int | None = None
    until_promote: bool = False
    analysis: str | None = None

    def describe(self) -> str:
        if self.weight is not None:
            return f"send {self.weight}% of traffic to the canary"
        if self.analysis:
            return f"run the {self.analysis} analysis"
        return "wait for deploy.canary.promote" if self.until_promote else f"wait {self.pause}s"

    def to_dict(self) -> dict:
        if self.weight is not None:
            return {"weight": self.weight}
        if self.analysis:
            return {"analysis": self.analysis}
        return {"pause": {} if self.until_promote else f"{self.pause}s"}


def _weight(value) -> int:
    try:
        weight = int(str(value).strip().rstrip("%"))
    except ValueError:
        weight = -1
    if not 1 <= weight <= 100:
        raise UsageError(f"canary weight {value!r} is not a whole number from 1 to 100",
                         hint="e.g. --percent 10 or --steps 10,25,50,100")
    return weight


def from_data(steps: Sequence, analyses: Sequence[str] = ()) -> list[CanaryStep]:
    """Steps from nself.yml `deploy.canary.steps` (a list of one-key mappings)."""
    out = []
    for index, item in enumerate(steps or ()):
        if not isinstance(item, Mapping) or len(item) != 1:
            raise UsageError(f"canary step {index + 1} must be one of {{weight: N}}, {{pause: 5m}}, "
                             f"{{pause: {{}}}}, {{analysis: NAME}}; got {item!r}",
                             hint="see docs/deploy.md, canary steps")
        (key, value), = item.items()
        if key == "weight":
            out.append(CanaryStep(weight=_weight(value)))
        elif key == "pause":
            empty = value in ({}, None, "")
            out.append(CanaryStep(pause=None if empty else duration(value), until_promote=empty))
        elif key == "analysis":
            if analyses and value not in analyses:
                raise UsageError(f"canary step {index + 1}: no analysis named {value!r}",
                                 hint="analyses: " + ", ".join(analyses))
            out.append(CanaryStep(analysis=str(value)))
        else:
            raise UsageError(f"canary step {index + 1}: unknown step {key!r}",
                             hint="steps are weight, pause or analysis")
    return _checked(out)


def from_flags(percent: int | str | None, steps: str | None, pause: str | None,
               analysis: str | None) -> list[CanaryStep]:
    """Steps from `--percent`, `--steps 10,25,50,100`, `--pause 5m`, `--analysis NAME`: each
    weight, then the analysis (if any), then the pause (none: wait for promote)."""
    if steps is not None and percent is not None:
        raise UsageError("--percent and --steps both say where the canary starts", hint="pass one of them")
    if steps is not None:
        weights = [_weight(w) for w in steps.split(",")]
    else:
        weights = [_weight(10 if percent is None else percent)]
    wait = CanaryStep(pause=duration(pause)) if pause else CanaryStep(until_promote=True)
    out: list[CanaryStep] = []
    for weight in weights:
        out.append(CanaryStep(weight=weight))
        if weight < 100:
            if analysis:
                out.append(CanaryStep(analysis=analysis))
            out.append(wait)
    return _checked(out)


def _checked(steps: list[CanaryStep]) -> list[CanaryStep]:
    weights = [s.weight for s in steps if s.weight is not None]
    if not weights:
        raise UsageError("a canary needs at least one weight step", hint="e.g. [{weight: 10}, {pause: {}}]")
    if weights != sorted(weights):
        raise UsageError(f"canary weights must not go down: {weights}", hint="e.g. 10,25,50,100")
    return steps


@dataclass(frozen=True)
class CanaryState:
    """A canary in an environment. `step` is the index of the next step to run; `weight` the
    canary's share now; `phase` one of PHASES; `analyses` every analysis result so far."""

    env: str
    release: str
    stable: str | None
    steps: tuple[CanaryStep, ...]
    step: int = 0
    weight: int = 0
    phase: str = "progressing"
    started: str = ""
    updated: str = ""
    analyses: tuple[dict, ...] = field(default_factory=tuple)
    strategy: str = "canary"             # or "blue-green" (one weight step: 100)

    @property
    def done(self) -> bool:
        return self.phase in ("promoted", "aborted")

    def next_step(self) -> CanaryStep | None:
        return self.steps[self.step] if self.step < len(self.steps) else None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["steps"] = [s.to_dict() for s in self.steps]
        data["analyses"] = list(self.analyses)
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> CanaryState:
        return cls(**{**data, "steps": tuple(from_data(data.get("steps") or ())),
                      "analyses": tuple(data.get("analyses") or ())})


def start(env: str, release: str, stable: str | None, steps: Sequence[CanaryStep], now: str) -> CanaryState:
    return CanaryState(env, release, stable, tuple(steps), started=now, updated=now)


def advanced(state: CanaryState, now: str, weight: int | None = None, paused: bool = False,
             analysis: dict | None = None) -> CanaryState:
    """The state after its next step ran (its weight applied, its pause reached, or its analysis
    recorded); the last step done means promoted at 100 %."""
    step = state.step + 1
    new = replace(state, step=step, updated=now, weight=state.weight if weight is None else weight,
                  phase="paused" if paused else "progressing",
                  analyses=state.analyses + ((analysis,) if analysis else ()))
    if step >= len(state.steps) and not paused:
        return replace(new, phase="promoted", weight=100)
    return new


def resumed(state: CanaryState, now: str) -> CanaryState:
    """`deploy.canary.promote`: leave the pause; the next step runs."""
    return replace(state, phase="progressing", updated=now)


def completed(state: CanaryState, now: str) -> CanaryState:
    """`deploy.canary.promote --full`: every remaining step skipped, 100 % on the new release."""
    return replace(state, step=len(state.steps), phase="promoted", weight=100, updated=now)


def aborted(state: CanaryState, now: str, reason: str) -> CanaryState:
    return replace(state, phase="aborted", weight=0, updated=now,
                   analyses=state.analyses + ({"abort": reason, "at": now},))
