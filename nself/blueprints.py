"""Rendering Cookiecutter blueprints (the top-level blueprints/ folder).

Cookiecutter is slow to import (~0.15 s): a rendered blueprint is cached under
the user's cache directory, keyed by the blueprint's content, the context and
nself's version, so repeated generation does not pay for it again.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from nself import __version__
from nself.errors import NselfError
from nself.resources import data_dir


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nself" / "blueprints"


def _fingerprint(template: Path, context: dict) -> str:
    sha = hashlib.sha256(f"{__version__}\n{json.dumps(context, sort_keys=True)}\n".encode())
    for path in sorted(template.rglob("*")):
        if path.is_file():
            sha.update(path.relative_to(template).as_posix().encode() + b"\0")
            sha.update(path.read_bytes())
    return sha.hexdigest()[:32]


def render(name: str, context: dict) -> dict[str, bytes]:
    """Files of blueprint `name` rendered with `context`, relative to its output folder."""
    template = data_dir("blueprints") / name
    if not (template / "cookiecutter.json").is_file():
        raise NselfError(f"no blueprint named {name!r}", code=2,
                         hint="see `nself blueprint.list`")
    cached = cache_root() / _fingerprint(template, context)
    if cached.is_dir():
        return _read(cached)
    work = Path(tempfile.mkdtemp(prefix="nself-blueprint-"))
    try:
        out = _generate(template, context, work)
        _store(out, cached)
        return _read(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _read(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _generate(template: Path, context: dict, work: Path) -> Path:
    from cookiecutter.generate import generate_context, generate_files

    full = generate_context(context_file=str(template / "cookiecutter.json"), extra_context=context)
    return Path(generate_files(repo_dir=str(template), context=full, output_dir=str(work),
                               overwrite_if_exists=True, accept_hooks=False))


def _store(out: Path, cached: Path) -> None:
    """Keep a render for next time. The cache is optional: one that cannot be written
    (a read-only HOME, an XDG_CACHE_HOME that is a file, a full disk) is skipped."""
    staging = None
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".render-", dir=cached.parent))
        shutil.copytree(out, staging, dirs_exist_ok=True)
        os.rename(staging, cached)
    except OSError:  # no usable cache, or another process rendered it first
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
