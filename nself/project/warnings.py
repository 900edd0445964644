"""Warnings are data: transforms return them, the CLI decides how to show them."""
from __future__ import annotations

from typing import NamedTuple


class Warning(NamedTuple):  # noqa: A001 - the domain word; never mixed with builtins.Warning
    code: str
    service: str | None
    key: str | None
    message: str

    def to_dict(self) -> dict:
        return self._asdict()

    def __str__(self) -> str:
        where = ".".join(p for p in (self.service, self.key) if p)
        return f"{where}: {self.message}" if where else self.message
