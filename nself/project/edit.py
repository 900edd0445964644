"""Change nself.yml in place, keeping what a person wrote: comments, key order, quoting and
flow style survive (ruamel.yaml's round-trip mode; a PyYAML load + dump would drop every
comment and reorder keys). Every change is validated as a whole before it is written, and
written atomically (a temporary file beside it, then a rename), so a refused change leaves
the file exactly as it was.

Keys are dotted paths (`helm.chart.version`, `environments.staging.namespace`), checked
against the settings schema (`nself.project.settings.SCHEMA`) with a "did you mean".
"""
from __future__ import annotations

import difflib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nself.errors import ConfigError, UsageError
from nself.project import settings, yamlio


def _yaml():
    from ruamel.yaml import YAML   # imported here: only the editing commands need it

    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)
    return rt


@dataclass
class Document:
    """nself.yml as ruamel's commented map, and where it goes (`path` may not exist yet)."""

    path: Path
    data: Any   # ruamel CommentedMap
    before: str = ""   # the text as read (what a dry run compares with)

    def text(self) -> str:
        buffer = io.StringIO()
        _yaml().dump(self.data, buffer)
        return buffer.getvalue()


def open_document(root: Path, *, repair: bool = False) -> Document:
    """The project's nself.yml (an empty one, named nself.yml, when the project has none).
    A file that does not validate is refused (exit 3) unless `repair`: `config set`/`reset`
    may be the fix, and `save` validates the result as a whole anyway."""
    from ruamel.yaml.comments import CommentedMap

    path = settings.find(root) or root / "nself.yml"
    if not path.is_file():
        return Document(path, CommentedMap())
    text = yamlio.read_text(path, "nself.yml")
    parsed = yamlio.parse(text, path, "nself.yml")
    if not repair:
        validate_text(text, path, parsed)
    from ruamel.yaml.error import YAMLError

    try:
        data = _yaml().load(text)
    except YAMLError as exc:   # PyYAML accepted it; ruamel did not (rare)
        raise ConfigError(f"{path}: cannot be edited in place: {exc}",
                          hint="edit it by hand (`nself config.edit`)") from None
    return Document(path, data if data is not None else CommentedMap(), text)


def save(doc: Document) -> None:
    """Validate the whole document, then replace the file atomically (its mode kept)."""
    text = doc.text()
    validate_text(text, doc.path)
    write_atomic(doc.path, text)


def validate_text(text: str, path: Path, data: Any = None) -> dict:
    """The checks nself runs on every load, on a text that is not written yet (exit 3): the
    settings schema (`settings.validate`, as a task loads the project) and the types of the
    values merged over Invoke's and the collections' defaults (`settings.check_defaults`, as
    the Program checks before any task runs). `data` is `text` parsed, when the caller has it."""
    from nself.tasks import defaults

    if data is None:
        data = yamlio.parse(text, path, "nself.yml")
    settings.check_defaults(data, defaults(), path, text)
    return settings.validate(data, path, text)


def write_atomic(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# -- keys ---------------------------------------------------------------------------
def split_key(key: str) -> list[str]:
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise UsageError(f"{key!r} is not a key", hint="use a dotted path such as helm.chart.version")
    return parts


def schema_at(parts: list[str]) -> dict:
    """The schema of the value at `parts`; unknown keys → UsageError with a did-you-mean.
    Invoke's keys and collection defaults (`run.echo`, `k8s.…`) are free-form objects."""
    node: dict = settings.SCHEMA
    for i, part in enumerate(parts):
        props = node.get("properties", {})
        extra = node.get("additionalProperties", True)
        if part in props:
            node = props[part]
        elif i == 0 and part.startswith("x-"):
            return {}
        elif isinstance(extra, dict):
            node = extra
        elif extra is True and node.get("type") in ("object", ["object", "null"]) and i > 0:
            return {}
        else:
            where = ".".join(parts[:i]) or "the top level"
            close = difflib.get_close_matches(part, list(props), n=1, cutoff=0.6)
            guess = ".".join([*parts[:i], close[0]]) if close else None
            raise UsageError(f"unknown key {'.'.join(parts)!r}: {where} has no {part!r}",
                             hint=(f"did you mean {guess!r}? " if guess else "") +
                                  "the keys are listed in docs/configuration.md")
    return node


def parse_value(raw: str, schema: dict) -> Any:
    """A command-line value as the schema wants it: text stays text where a string is
    expected (`1.0` for a chart version); elsewhere YAML's reading (`2`, `true`, `[a, b]`)."""
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds or []
    if kinds == ["string"] or (not kinds and all(isinstance(e, str) for e in schema.get("enum", [1]))):
        return raw
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def get(doc: Document, parts: list[str]) -> Any:
    node = doc.data
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            raise KeyError(".".join(parts))
        node = node[part]
    return node


def set_value(doc: Document, parts: list[str], value: Any) -> None:
    """Set a value, making the mappings on the way (appended after the existing keys)."""
    from ruamel.yaml.comments import CommentedMap

    node = doc.data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = CommentedMap()
        node = node[part]
    node[parts[-1]] = value


def delete(doc: Document, parts: list[str]) -> Any:
    """Remove a key (and mappings left empty by it); KeyError when it is not set."""
    old = get(doc, parts)
    chain = [doc.data]
    for part in parts[:-1]:
        chain.append(chain[-1][part])
    del chain[-1][parts[-1]]
    for depth in range(len(parts) - 1, 0, -1):
        if not chain[depth]:
            del chain[depth - 1][parts[depth - 1]]
    return old


def merge(doc: Document, incoming: dict, prefix: tuple = ()) -> list[str]:
    """Deep-merge `incoming` into the document (mappings merge, other values replace);
    returns the dotted keys that changed."""
    changed = []
    for key, value in incoming.items():
        here = doc.data
        for part in prefix:
            here = here[part]
        if isinstance(value, dict) and isinstance(here.get(key), dict):
            changed += merge(doc, value, (*prefix, key))
        elif here.get(key, object()) != value:
            set_value(doc, [*prefix, key], value)
            changed.append(".".join(map(str, (*prefix, key))))
    return changed


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """`{"helm": {"chart": {"name": "x"}}}` → `{"helm.chart.name": "x"}` (lists stay values)."""
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: plain(node)} if prefix else {}


def plain(node: Any) -> Any:
    """ruamel's commented containers and scalars as plain Python data."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node
