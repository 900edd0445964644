"""The per-environment .env cascade of the contract (design.md).

Order, later wins: `.env` → `.env.<env>` (and its alias spelling) → `.env.secrets`
→ `.env.local` (local only). The process environment overrides the files only
for `local`; other environments take from it only the variables listed in
`environments.<env>.pass_env`. `.env.example` is documentation and never loaded.
"""
from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from dotenv.parser import parse_stream

from nself.errors import ConfigError, UsageError
from nself.project.interpolate import Substitution, interpolate

CANONICAL_ENVS = ("local", "staging", "production")
ALIASES = {"dev": "local", "development": "local", "prod": "production", "stage": "staging"}
_SPELLINGS = {env: [a for a, c in ALIASES.items() if c == env and a in ("dev", "prod")]
              for env in CANONICAL_ENVS}
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|(^|_)KEY$|_PASS$|^PGPASS")
# Settings about secrets, not secrets: token lifetimes, paths to secret files.
_NOT_SECRET = re.compile(r"(EXPIRES|_TTL|LIFETIME|TIMEOUT|_LENGTH|_FILE|_PATH|_DIR)"
                         r"(_IN|_SECONDS|_SECS|_MS|_MINUTES|_HOURS|_DAYS)?$")
# A value this long that also appears inside another value marks that value secret
# (DATABASE_URL=postgres://u:<password>@db); shorter ones would match by accident.
_MIN_SECRET_LEN = 6
# A URL with a password in it (`redis://:pw@cache`, `postgres://u:pw@db/app`) is a secret
# whatever its variable is called.
_URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)


def canonical_env(name: str, known: Iterable[str] = ()) -> str:
    """Map `dev`/`prod`/… to the canonical name; refuse names that are not environments."""
    name = (name or "").strip().lower()
    name = ALIASES.get(name, name)
    valid = set(CANONICAL_ENVS) | set(known)
    if name in valid:
        return name
    if not _ENV_NAME.match(name):
        raise UsageError(f"invalid environment name {name!r}",
                         hint="use lowercase letters, digits and '-', e.g. --env staging")
    raise UsageError(f"unknown environment {name!r}",
                     hint="use one of " + ", ".join(sorted(valid)) +
                          " (aliases: dev, prod), or declare it under `environments:` in nself.yml")


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return bool(_SECRET_NAME.search(upper)) and not _NOT_SECRET.search(upper)


def cascade(root: Path, env: str) -> list[Path]:
    """The env files for `env`, in load order (whether or not they exist)."""
    names = [".env", *(f".env.{s}" for s in _SPELLINGS.get(env, [])), ".env.secrets"]
    if env != "local":
        names.insert(len(names) - 1, f".env.{env}")
    else:
        names.append(".env.local")
    return [root / n for n in names]


@dataclass(frozen=True)
class EnvVars:
    """The variables of one environment, with where each came from and which are secret."""

    env: str
    values: Mapping[str, str]
    sources: Mapping[str, str]
    secrets: frozenset[str]
    files: tuple[Path, ...]          # the cascade, in order
    loaded: tuple[Path, ...]         # the ones that exist
    defined: Mapping[str, tuple[str, ...]]  # file name -> the keys it sets
    lookup: Mapping[str, str]        # what compose interpolation may read
    missing: frozenset[str] = frozenset()   # required but unset (lenient loads only)

    def secret_values(self) -> list[str]:
        return sorted({self.values[k] for k in self.secrets
                       if len(self.values.get(k, "")) >= _MIN_SECRET_LEN}, key=len, reverse=True)


def load_env(root: Path, env: str, *, pass_env: Iterable[str] = (),
             process_env: Mapping[str, str] | None = None, lenient: bool = False) -> EnvVars:
    process_env = os.environ if process_env is None else process_env
    files = cascade(root, env)
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    secret: set[str] = set()
    refs: dict[str, set[str]] = {}
    outside = dict(process_env) if env == "local" else \
        {k: process_env[k] for k in pass_env if k in process_env}
    loaded = []
    missing: set[str] = set()
    defined: dict[str, tuple[str, ...]] = {}
    for path in files:
        if not path.is_file():
            continue
        loaded.append(path)
        entries = list(_parse(path, values, outside, lenient, missing))
        defined[path.name] = tuple(key for key, _, _ in entries)
        for key, value, used in entries:
            values[key] = value
            sources[key] = path.name
            refs[key] = used
            if path.name == ".env.secrets":
                secret.add(key)
    for key, value in outside.items():
        if key in values or key in pass_env:
            values[key] = value
            sources[key] = "process environment"
    secret |= classify(values, refs, secret)
    return EnvVars(env=env, values=MappingProxyType(values), sources=MappingProxyType(sources),
                   secrets=frozenset(secret), files=tuple(files), loaded=tuple(loaded),
                   defined=MappingProxyType(defined), missing=frozenset(missing),
                   lookup=MappingProxyType({**outside, **values}))


def classify(values: Mapping[str, str], refs: Mapping[str, set[str]],
             known: Iterable[str] = (), secret_values: Iterable[str] = ()) -> set[str]:
    """Secret names: known ones, secret-looking names, and values built from secrets
    (by reference, or by containing a secret value literally)."""
    secret = set(known) | {k for k in values if is_secret_name(k) or _URL_PASSWORD.search(values[k] or "")}
    outside = [v for v in secret_values if _distinctive(v)]
    changed = True
    while changed:  # a value built from a value built from a secret is secret too
        changed = False
        needles = outside + [values[k] for k in secret if _distinctive(values.get(k) or "")]
        for key, value in values.items():
            if key in secret:
                continue
            if refs.get(key, set()) & secret or any(n in (value or "") for n in needles):
                secret.add(key)
                changed = True
    return secret


def _distinctive(value: str) -> bool:
    """Whether finding this secret inside another value means that value embeds it.
    A sample password like "temporal" or "nextcloud" also names services and hosts."""
    if len(value) < _MIN_SECRET_LEN:
        return False
    has_digit = any(c.isdigit() for c in value)
    has_alpha = any(c.isalpha() for c in value)
    return len(value) >= 16 or (has_digit and has_alpha) or not value.isalnum()


def parse_env_file(path: Path, variables: Mapping[str, str], used: set[str] | None = None) -> dict[str, str]:
    """One env file (`env_file:` of a service), interpolated from `variables`; the names it
    read from `variables` are added to `used`."""
    out = {}
    for key, value, names in _parse(path, {}, variables):
        out[key] = value
        if used is not None:
            used |= names - set(out)
    return out


# (path, mtime, size) → [(key, value or None, line, literal)]: python-dotenv's parser is
# the slow part of loading, and one run loads the same files for several environments.
_BINDINGS: dict[tuple, list[tuple[str, str | None, int, bool]]] = {}


def _bindings(path: Path) -> list[tuple[str, str | None, int, bool]]:
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key in _BINDINGS:
            return _BINDINGS[key]
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text", hint="save the env file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}",
                          hint="check the file's permissions") from None
    out = []
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            raise ConfigError(f"{path}:{line}: cannot parse {binding.original.string.strip()!r}",
                              hint="write KEY=value (quote values with spaces or '#')")
        if binding.key is None:
            continue
        literal = binding.value is not None and \
            binding.original.string.split("=", 1)[1].lstrip().startswith("'")
        out.append((binding.key, binding.value, line, literal))
    _BINDINGS[key] = out
    return out


def _parse(path: Path, earlier: Mapping[str, str], outside: Mapping[str, str],
           lenient: bool = False, missing: set[str] | None = None):
    scope = {**outside, **earlier}
    for key, raw, line, literal in _bindings(path):
        if raw is None:  # a bare `KEY` takes the value from outside, as compose does
            if key in outside:
                yield key, outside[key], set()
            continue
        seen = Substitution(lenient=lenient)
        value = raw if literal else interpolate(raw, scope, where=f"{path.name}:{line}", seen=seen)
        scope[key] = value
        if missing is not None and lenient:
            missing |= seen.missing
        yield key, value, seen.used
