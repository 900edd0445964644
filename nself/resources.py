"""Where the top-level `blueprints/` and `overlays/` are at run time.

A wheel carries them inside the package (`nself/_data/…`, see pyproject.toml);
a source checkout or an editable install reads them from the repository root.
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """`blueprints` or `overlays`, installed or from the source tree."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"nself's {name}/ folder is missing from this installation")
