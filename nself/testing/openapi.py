"""Contract checks: is a request (or a fake's response) one the provider's OpenAPI description
allows? openapi-core validates path, parameters, security and body schemas; on top of it,
query parameters and top-level body fields the description does not name are refused, since a
real API ignores or rejects them and either way the caller has a bug."""
from __future__ import annotations

import gzip
import json
import re
from functools import cache
from pathlib import Path


@cache
def _load(path: str):
    """The description at `path`, or at `path.gz` when only a compressed copy is stored (large
    single-file descriptions are kept gzip-compressed in tests/data/specs)."""
    from jsonschema_path import SchemaPath
    from openapi_core import Config, OpenAPI

    if Path(path).is_file():
        spec = SchemaPath.from_file_path(path)
    else:
        with gzip.open(f"{path}.gz", "rt", encoding="utf-8") as compressed:
            spec = SchemaPath.from_file(compressed, base_uri=Path(path).absolute().as_uri())
    # The upstream files have known defects (specs/SOURCES.md): skip the strict spec check.
    return spec, OpenAPI(spec, config=Config(spec_validator_cls=None))


class Contract:
    """`host` is the spec's server (scheme + host); `prefix` the path part of its server URL
    that the spec's paths leave out (Hetzner: /v1)."""

    def __init__(self, spec_path: Path, host: str, prefix: str = "", tolerate: tuple[str, ...] = (),
                 scope: str = ""):
        # Only paths matching `scope` are described by this file (Scaleway: /instance/ only).
        self.scope = re.compile(scope)
        self.spec_path = str(spec_path)
        self.host = host
        self.prefix = prefix
        # Findings that come from a known defect of the description, not from the traffic.
        self.tolerate = [re.compile(t) for t in tolerate]

    def _operation(self, method: str, path: str):
        spec, _ = _load(self.spec_path)
        relative = path[len(self.prefix):] if self.prefix and path.startswith(self.prefix) else path
        with (spec / "paths").open() as paths:
            templates = list(paths)
        # Literal text wins: /instance/{id}:reboot before /instance/{id}.
        for template in sorted(templates, key=lambda t: (t.count("{"), -len(re.sub(r"\{[^}]*\}", "", t)))):
            pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
            if re.match(pattern, relative):
                item = spec / "paths" / template
                if method in item:
                    return item, item / method
        return None, None

    def check_request(self, method: str, path: str, query: dict, body, headers: dict) -> list[str]:
        from openapi_core.exceptions import OpenAPIError
        from openapi_core.testing import MockRequest

        method = method.lower()
        item, operation = self._operation(method, path)
        if operation is None:
            return [f"{method.upper()} {path}: no such operation in {Path(self.spec_path).name}"]
        problems = []
        declared = {p["name"] for where in (item, operation) if "parameters" in where
                    for p in _contents(where / "parameters") if p.get("in") == "query"}
        problems += [f"{method.upper()} {path}: query parameter {k!r} is not in the spec"
                     for k in query if k not in declared]
        if body is not None:
            allowed = _body_fields(operation)
            if allowed is not None and isinstance(body, dict):
                problems += [f"{method.upper()} {path}: body field {k!r} is not in the spec"
                             for k in body if k not in allowed]
        _, api = _load(self.spec_path)
        request = MockRequest(self.host, method, path, args=query, headers=headers,
                              data=None if body is None else json.dumps(body),
                              content_type="application/json")
        try:
            api.validate_request(request)
        except OpenAPIError as exc:
            details = [d for d in _details(exc) if not any(t.search(d) for t in self.tolerate)]
            if details:
                problems.append(f"{method.upper()} {path}: {type(exc).__name__}: {'; '.join(details)}")
        return problems

    def check_response(self, method: str, path: str, query: dict, status: int, body) -> list[str]:
        from openapi_core.exceptions import OpenAPIError
        from openapi_core.testing import MockRequest, MockResponse

        if body is None:             # an empty answer: only its status can be wrong
            _, operation = self._operation(method.lower(), path)
            declared = set(_deref(operation / "responses")) if operation is not None else set()
            return [] if str(status) in declared or "default" in declared else \
                [f"response to {method} {path}: status {status} is not in the spec"]
        _, api = _load(self.spec_path)
        request = MockRequest(self.host, method.lower(), path, args=query)
        response = MockResponse(b"" if body is None else json.dumps(body).encode(), status_code=status,
                                content_type="application/json")
        try:
            api.validate_response(request, response)
        except OpenAPIError as exc:
            details = [d for d in _details(exc) if not any(t.search(d) for t in self.tolerate)]
            return [f"response to {method} {path} ({status}): {'; '.join(details)}"] if details else []
        return []


def _contents(schema_path):
    with schema_path.open() as value:
        items = value
    return [_deref(schema_path / i) for i in range(len(items))] if isinstance(items, list) else []


def _deref(schema_path) -> dict:
    with schema_path.open() as value:
        return dict(value)


def _body_fields(operation) -> set[str] | None:
    """Top-level property names of the JSON body schema (through allOf/anyOf/oneOf), or None
    when the schema does not list them."""
    if "requestBody" not in operation:
        return set()
    content = operation / "requestBody" / "content"
    if "application/json" not in content:
        return None
    fields: set[str] = set()
    open_ended = False

    def walk(schema, depth=0):
        nonlocal open_ended
        if depth > 5:
            return
        if "properties" in schema:
            with (schema / "properties").open() as props:
                fields.update(props)
        elif not any(k in schema for k in ("allOf", "anyOf", "oneOf")):
            open_ended = True
        for key in ("allOf", "anyOf", "oneOf"):
            if key in schema:
                with (schema / key).open() as parts:
                    count = len(parts)
                for i in range(count):
                    walk(schema / key / i, depth + 1)

    walk(content / "application/json" / "schema")
    return None if open_ended and not fields else fields


def _details(exc: Exception) -> list[str]:
    cause = exc.__cause__
    found = [getattr(e, "message", str(e)) for e in getattr(cause, "schema_errors", None) or []]
    return found or [str(cause or exc).split("\n")[0]]




def example(schema_path, depth: int = 0):
    """An instance of a schema built from its `example`s (or type defaults), so a fake answers
    with every field the real API documents."""
    with schema_path.open() as raw:
        node = dict(raw) if hasattr(raw, "keys") else raw
    if not isinstance(node, dict) or depth > 12:
        return None
    if "example" in node and not any(k in node for k in ("properties", "allOf")):
        return node["example"]
    if "allOf" in node:
        merged: dict = {}
        for i in range(len(node["allOf"])):
            part = example(schema_path / "allOf" / i, depth + 1)
            if isinstance(part, dict):
                merged.update(part)
        return merged
    for key in ("oneOf", "anyOf"):
        if key in node:
            return example(schema_path / key / 0, depth + 1)
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        return {name: example(schema_path / "properties" / name, depth + 1) for name in node.get("properties", {})}
    if kind == "array":
        item = example(schema_path / "items", depth + 1) if "items" in node else None
        return [] if item is None else [item]
    if "enum" in node:
        return node["enum"][0]
    return {"string": "", "integer": 0, "number": 0, "boolean": False}.get(kind)


def response_example(contract: Contract, method: str, path: str, status: str = "200"):
    """The example answer of an operation (for a fake to start from)."""
    _, operation = contract._operation(method.lower(), path)
    return example(operation / "responses" / status / "content" / "application/json" / "schema")
