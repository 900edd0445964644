"""The user's own patches, kept across regeneration (issue 21 kind 10).

`<output>/patches/<env>/*.yaml`, and `patches/all/` for every environment, hold patches
the user writes: strategic-merge documents naming an object by kind and metadata.name
(what `kubectl patch --type strategic` reads). nself never writes there. Each run copies
them into the environment's overlay (`overlays/<env>/patches/user/`: kustomize loads
patch files only from inside the overlay) and lists them after nself's own patches, so
they have the last word; edit the originals, not the copies.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from nself.errors import ConfigError
from nself.k8s.kustomize import Environment

ALL = "all"


def user_patches(target: Path, environments: list[Environment]) -> dict[str, dict[str, bytes]]:
    """environment → {file name in its overlay: content}. Raises ConfigError for a patch that
    is not a kind/name document or names no object of an environment it applies to
    (kustomize would refuse the whole overlay)."""
    out: dict[str, dict[str, bytes]] = {}
    for folder in (ALL, *(e.name for e in environments)):
        applies = environments if folder == ALL else [e for e in environments if e.name == folder]
        for path in _patch_files(target / "patches" / folder):
            _check(path, applies)
            for env in applies:
                out.setdefault(env.name, {})[f"{folder}-{path.name}"] = path.read_bytes()
    return out


def _patch_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def _check(path: Path, environments: list[Environment]) -> None:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"patch {path}: not valid YAML ({exc.__class__.__name__})",
                          hint="fix the file, or remove it") from None
    for doc in docs:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        name = (doc.get("metadata") or {}).get("name") if isinstance(doc, dict) else None
        if not (isinstance(kind, str) and isinstance(name, str)):
            raise ConfigError(f"patch {path}: each document needs kind and metadata.name",
                              hint="write a strategic-merge patch: apiVersion, kind, metadata.name "
                                   "and the fields to change")
        for env in environments:
            if not any(o["kind"] == kind and o["metadata"]["name"] == name
                       for o in env.manifests.all()):
                raise ConfigError(f"patch {path}: {env.name} has no {kind} {name!r}",
                                  hint="name an object of the generated overlay (kubectl kustomize "
                                       f"k8s/overlays/{env.name} lists them)")
