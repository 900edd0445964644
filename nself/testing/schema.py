"""Kubernetes object schemas from kubernetes-validate's files (OpenAPI of each release, as JSON
Schema): one validator per (release, kind, apiVersion, strictness), built once."""
from __future__ import annotations

import functools
import json
import re
from importlib.resources import files

SCHEMAS = files("kubernetes_validate") / "kubernetes-json-schema"


def schema_file(version: str, kind: str, api_version: str, strict: bool = True):
    """`deployment-apps-v1.json` for apps/v1 Deployment in `v1.33.0-local-strict` (strict: unknown
    fields are errors, as with `fieldValidation=Strict`)."""
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return SCHEMAS / f"v{version}.0-local{'-strict' if strict else ''}" / f"{kind.lower()}-{group}.json"


@functools.cache
def _definitions(version: str, strict: bool):
    from referencing import Resource

    folder = schema_file(version, "x", "v1", strict).parent      # the folder of any kind
    return Resource.from_contents(json.loads((folder / "_definitions.json").read_text()))


@functools.cache
def validator(version: str, kind: str, api_version: str, strict: bool = True):
    """A jsonschema validator, or None when the release has no such kind."""
    import jsonschema
    from referencing import Registry, Resource

    path = schema_file(version, kind, api_version, strict)
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    registry = _definitions(version, strict) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def problem(obj: dict, version: str, strict: bool = True) -> str | None:
    """The first schema error of `obj` as a sentence, or None when it is valid (or unknown)."""
    import jsonschema

    check = validator(version, obj.get("kind", ""), obj.get("apiVersion", ""), strict)
    if check is None:
        return None
    error = jsonschema.exceptions.best_match(check.iter_errors(obj))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path) or "the object"
    return f"{where}: {error.message}"
