"""The project: compose files, env files and nself.yml, loaded into one immutable model.

`find_root` is cheap and imported at start-up; `load_project` and friends live
in `nself.project.loader` and are imported on first use (they pull in the YAML,
dotenv and JSON Schema machinery).
"""
from __future__ import annotations

from pathlib import Path

SETTINGS_FILES = ("nself.yml", "nself.yaml")   # the names Invoke also reads as project config
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_LAZY = ("load_project", "select_env", "EnvChoice")


def find_root(start: Path | None = None) -> Path | None:
    """The nearest directory, from `start` upward, holding nself.yml or a compose file."""
    here = (start or Path.cwd()).resolve()
    markers = (*SETTINGS_FILES, *COMPOSE_FILES)
    for directory in (here, *here.parents):
        if any((directory / m).is_file() for m in markers):
            return directory
    return None


def __getattr__(name: str):
    if name in _LAZY:
        from nself.project import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'nself.project' has no attribute {name!r}")
