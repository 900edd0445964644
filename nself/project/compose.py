"""Load compose files the way `docker compose config` does.

files → YAML (with `!reset`/`!override`) → interpolate (per file) → validate
against the official Compose JSON Schema → normalise → `extends` → merge in
order → `include` → profiles. The result is one plain, canonical dict plus what
interpolation saw (for secrets) and structured warnings; model.py types it.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nself import __version__
from nself.errors import ConfigError
from nself.project import COMPOSE_FILES, validcache, yamlio
from nself.project.envfiles import parse_env_file
from nself.project.interpolate import Substitution, interpolate
from nself.project.merge import merge
from nself.project.normalize import normalize_service, resolve_path, strip_tags
from nself.project.warnings import Warning

_OVERRIDES = {"compose": ("compose.override.yaml", "compose.override.yml"),
              "docker-compose": ("docker-compose.override.yaml", "docker-compose.override.yml")}


def default_files(root: Path) -> list[Path]:
    """The compose file of `root` and its override file, as compose picks them."""
    for name in COMPOSE_FILES:
        main = root / name
        if main.is_file():
            stem = name.rsplit(".", 1)[0]
            extra = [root / o for o in _OVERRIDES[stem] if (root / o).is_file()][:1]
            return [main, *extra]
    return []


@dataclass
class Loaded:
    """The merged compose document and what was learned while loading it."""

    data: dict
    files: list[Path]
    env_refs: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    warnings: list[Warning] = field(default_factory=list)


@functools.cache
def _validator():
    import jsonschema  # lazy: only needed when a project is loaded

    schema = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())
    # Inlining the (non-recursive) $refs makes validation ~40% faster: jsonschema
    # otherwise resolves every reference on every node.
    return jsonschema.Draft7Validator(_inline_refs(schema, schema["definitions"]))


def _inline_refs(node: Any, definitions: dict, seen: tuple = ()) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/definitions/"):
            name = ref.rsplit("/", 1)[1]
            return node if name in seen else _inline_refs(definitions[name], definitions, (*seen, name))
        return {k: _inline_refs(v, definitions, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, definitions, seen) for v in node]
    return node


class _Loader:
    def __init__(self, variables: Mapping[str, str], profiles: Iterable[str], lenient: bool = False):
        self.variables = variables
        self.lenient = lenient
        self.profiles = set(profiles)
        self.env_refs: dict[tuple[str, str], set[str]] = {}
        self.missing: dict[str, str] = {}
        self.used: set[str] = set()       # every variable interpolation read
        self.cache: dict[Path, tuple[dict, Path]] = {}

    # -- one file -----------------------------------------------------------
    def read(self, path: Path, base: Path) -> dict:
        """One file: parsed, interpolated, validated, normalised (extends not yet resolved)."""
        path = path.resolve()
        if path in self.cache:
            return self.cache[path][0]
        data, text = yamlio.load(path, "compose file", compose=True)
        if data is None:
            raise ConfigError(f"{path}: compose file is empty",
                              hint="add a `services:` section, or remove the file")
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a compose file must be a mapping at the top level",
                              hint="start it with keys such as `services:`")
        data = self._interpolate(data, (), path)
        self._validate(strip_tags(data), path, text)
        services = _untagged(data.get("services")) or {}
        data["services"] = _retagged(data.get("services"), {
            name: normalize_service(name, svc or {}, base) for name, svc in services.items()})
        for kind in ("secrets", "configs"):
            for item in (data.get(kind) or {}).values():
                if isinstance(item, dict) and isinstance(item.get("file"), str):
                    item["file"] = resolve_path(item["file"], base)
        self.cache[path] = (data, base)
        return data

    def _interpolate(self, node: Any, path: tuple, file: Path) -> Any:
        if isinstance(node, str):
            seen = Substitution(lenient=self.lenient)
            where = f"{file.name} at {'.'.join(map(str, path))}"
            value = interpolate(node, self.variables, where=where, seen=seen)
            self.used |= seen.used
            for name in seen.missing:
                self.missing.setdefault(name, where)
            if len(path) >= 4 and path[0] == "services" and path[2] == "environment" and seen.used:
                key = path[3] if isinstance(path[3], str) else node.split("=", 1)[0]
                self.env_refs.setdefault((path[1], key), set()).update(seen.used)
            return value
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                key = _key(key, path, file)
                out[key] = self._interpolate(value, path + (key,), file)
            return out
        if isinstance(node, list):
            return [self._interpolate(v, path + (i,), file) for i, v in enumerate(node)]
        if isinstance(node, (yamlio.Reset, yamlio.Override)):
            return type(node)(self._interpolate(node.value, path, file))
        return node

    @staticmethod
    def _validate(data: dict, path: Path, text: str) -> None:
        digest = validcache.key("compose", __version__, data)
        if validcache.known("compose", digest):
            return
        validator = _validator()
        if validator.is_valid(data):  # the common case; collecting errors costs more
            validcache.remember("compose", digest)
            return
        errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
        details = []
        for error in errors[:20]:
            keys = list(error.absolute_path)
            line = yamlio.line_of(text, keys)
            at = ".".join(map(str, keys)) or "(top level)"
            details.append(f"{path.name}:{line}: {at}: {_schema_message(error)}")
        raise ConfigError(f"{path}: does not follow the Compose Specification", details=details,
                          hint="fix the keys named above (the spec: https://compose-spec.io)")

    # -- extends --------------------------------------------------------------
    def service(self, path: Path, name: str, stack: tuple = ()) -> dict:
        """Service `name` of file `path` with its `extends` chain merged in."""
        services = _untagged(self.cache[path.resolve()][0]["services"])
        if name not in services:
            raise ConfigError(f"{path}: extends names service {name!r}, which is not defined there",
                              hint="available: " + (", ".join(sorted(services)) or "none"))
        marker = (str(path.resolve()), name)
        if marker in stack:
            chain = " -> ".join(f"{Path(f).name}:{s}" for f, s in (*stack, marker))
            raise ConfigError(f"circular extends: {chain}", hint="remove one `extends` from the loop")
        svc = services[name]
        ext = svc.get("extends")
        if not ext:
            return svc
        ext = {"service": ext} if isinstance(ext, str) else ext
        base_path = Path(ext["file"]) if ext.get("file") else path
        if not base_path.is_absolute():
            base_path = path.parent / base_path
        if ext.get("file"):
            self.read(base_path, base_path.resolve().parent)
        base = self.service(base_path, ext["service"], (*stack, marker))
        own = {k: v for k, v in svc.items() if k != "extends"}
        return merge({k: v for k, v in base.items() if k != "extends"}, own, ("services", name))

    def project(self, files: list[Path], base: Path) -> dict:
        """Several files merged in order, each with extends resolved."""
        merged: dict = {}
        for file in files:
            data = self.read(file, base)
            data = dict(data, services=_retagged(data["services"], {
                n: self.service(file, n) for n in _untagged(data["services"])}))
            merged = merge(merged, data) if merged else strip_tags(data)
        return merged


def _untagged(section: Any) -> Any:
    """A top-level section without its `!reset`/`!override` tag (`services: !reset`)."""
    return section.value if isinstance(section, (yamlio.Reset, yamlio.Override)) else section


def _retagged(original: Any, value: Any) -> Any:
    return type(original)(value) if isinstance(original, (yamlio.Reset, yamlio.Override)) else value


def _key(key: Any, path: tuple, file: Path) -> str:
    """Mapping keys are strings in compose; YAML may hand us numbers, booleans or null."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (list, tuple, dict)):
        at = ".".join(map(str, path)) or "the top level"
        raise ConfigError(f"{file}: empty or complex mapping key under {at}",
                          hint="every key must be a plain name followed by ':'")
    return str(key).lower() if isinstance(key, bool) else str(key)


def _schema_message(error) -> str:
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return "unknown key(s) " + ", ".join(map(repr, extra))
    if error.validator in ("type", "oneOf", "anyOf"):
        return f"{error.instance!r} has the wrong type" + \
            (f" (expected {error.validator_value})" if error.validator == "type" else "")
    return error.message


def load_compose(files: list[Path], variables: Mapping[str, str], *,
                 profiles: Iterable[str] = (), lenient: bool = False) -> Loaded:
    if not files:
        raise ConfigError("no compose file found",
                          hint="add docker-compose.yml (or compose.yaml) to the project root, "
                               "or pass --file")
    loader = _Loader(variables, profiles, lenient)
    base = files[0].resolve().parent
    data = loader.project(files, base)
    warnings: list[Warning] = []
    _include(loader, data, base, warnings)
    _apply_profiles(data, loader.profiles)
    _check_references(data)
    for name, where in sorted(loader.missing.items()):
        warnings.append(Warning("unset-variable", None, name,
                                f"variable {name} is not set, using an empty string ({where})"))
    return Loaded(data=data, files=[f.resolve() for f in files], env_refs=loader.env_refs,
                  warnings=warnings, used=loader.used)


def _include(loader: _Loader, data: dict, base: Path, warnings: list, depth: int = 0) -> None:
    entries = data.pop("include", None) or []
    for entry in entries:
        entry = {"path": entry} if isinstance(entry, str) else dict(entry)
        if not entry.get("path"):
            raise ConfigError("an `include` entry has no path",
                              hint="write `include: [path/to/compose.yaml]` or `- path: …`")
        paths = [entry["path"]] if isinstance(entry["path"], str) else list(entry["path"])
        files = [Path(resolve_path(p, base)) for p in paths]
        project_dir = Path(resolve_path(entry.get("project_directory") or str(files[0].parent), base))
        if depth > 20:
            raise ConfigError(f"include nests too deep at {files[0]}", hint="look for an include loop")
        env_files = entry.get("env_file") or [str(project_dir / ".env")]
        env_files = [env_files] if isinstance(env_files, str) else env_files
        own: dict[str, str] = {}
        for env_file in env_files:
            env_path = Path(resolve_path(env_file, base))
            if env_path.is_file():
                own.update(parse_env_file(env_path, {**own, **loader.variables}, loader.used))
            elif entry.get("env_file"):
                raise ConfigError(f"include env_file not found: {env_path}", hint="fix the path")
        for file in files:
            if not file.is_file():
                raise ConfigError(f"included compose file not found: {file}",
                                  hint="fix the `include` path (relative to the including file)")
        sub = _Loader({**own, **loader.variables}, loader.profiles, loader.lenient)
        included = sub.project(files, project_dir)
        _include(sub, included, project_dir, warnings, depth + 1)
        loader.env_refs.update(sub.env_refs)
        loader.used |= sub.used
        for kind in ("services", "networks", "volumes", "secrets", "configs"):
            for name, value in (included.get(kind) or {}).items():
                if name in (data.get(kind) or {}):
                    raise ConfigError(f"{kind[:-1]} {name!r} is defined both in {files[0]} "
                                      "and in the project that includes it",
                                      hint="rename one of them: included resources are not merged")
                data.setdefault(kind, {})[name] = value


def _apply_profiles(data: dict, active: set[str]) -> None:
    services = data.get("services") or {}
    if "*" in active:
        return
    data["services"] = {n: s for n, s in services.items()
                        if not s.get("profiles") or set(s["profiles"]) & active}


def _check_references(data: dict) -> None:
    services = data.get("services") or {}
    for name, svc in services.items():
        for dep, opts in (svc.get("depends_on") or {}).items():
            if dep not in services and (opts or {}).get("required", True):
                raise ConfigError(f"service {name!r} depends on undefined service {dep!r}",
                                  hint=f"define {dep!r}, enable its profile with --profile, "
                                       "or mark the dependency `required: false`")
        for kind in ("secrets", "configs"):
            for ref in svc.get(kind) or []:
                if ref["source"] not in (data.get(kind) or {}):
                    raise ConfigError(f"service {name!r} uses undefined {kind[:-1]} {ref['source']!r}",
                                      hint=f"declare it under the top-level `{kind}:`")
        for vol in svc.get("volumes") or []:
            if vol.get("type") == "volume" and vol.get("source") and \
                    vol["source"] not in (data.get("volumes") or {}):
                raise ConfigError(f"service {name!r} mounts undefined volume {vol['source']!r}",
                                  hint="declare it under the top-level `volumes:`, "
                                       "or start the source with ./ for a bind mount")
        for net in svc.get("networks") or {}:
            if net != "default" and net not in (data.get("networks") or {}):
                raise ConfigError(f"service {name!r} joins undefined network {net!r}",
                                  hint="declare it under the top-level `networks:`")
