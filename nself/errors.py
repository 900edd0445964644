"""One error type for everything nself refuses to do, with the exit-code table.

Only the CLI turns an `NselfError` into an exit; library code raises it.
"""
from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """Exit codes of the product plan (§4.2)."""

    OK = 0
    GENERAL = 1
    USAGE = 2
    CONFIG = 3
    RUNTIME = 4
    DATABASE = 5
    NETWORK = 6
    PERMISSION = 7
    PROVIDER = 8
    KUBERNETES = 9
    TIMEOUT = 10
    NOT_EXECUTABLE = 126
    NOT_FOUND = 127


class NselfError(Exception):
    """A failure a person can act on: what happened, and how to fix it."""

    def __init__(self, message: str, *, code: int = Exit.GENERAL, hint: str | None = None,
                 details: list[str] | None = None, reported: bool = False):
        super().__init__(message)
        self.message = message
        # True when the command already printed its result (e.g. a --json report),
        # so the CLI adds only a line on stderr, not a second document.
        self.reported = reported
        self.code = int(code)
        self.hint = hint
        self.details = list(details or [])

    def to_dict(self) -> dict:
        out = {"error": self.message, "code": self.code}
        if self.details:
            out["details"] = self.details
        if self.hint:
            out["hint"] = self.hint
        return out

    def __str__(self) -> str:
        lines = [self.message, *(f"  - {d}" for d in self.details)]
        if self.hint:
            lines += ["", "  To fix: " + self.hint.replace("\n", "\n          ")]
        return "\n".join(lines)


class ConfigError(NselfError):
    """Bad project configuration: compose, nself.yml, env files (exit 3)."""

    def __init__(self, message: str, *, hint: str | None = None, details: list[str] | None = None,
                 reported: bool = False):
        super().__init__(message, code=Exit.CONFIG, hint=hint, details=details, reported=reported)


class UsageError(NselfError):
    """Bad command-line arguments (exit 2)."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message, code=Exit.USAGE, hint=hint)
