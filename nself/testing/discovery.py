"""Requests and answers checked against a Google API Discovery document (Compute v1 ships in
google-api-python-client, a test extra): the method is found by HTTP method and `flatPath`
template, query parameters must be the method's own with the right types, and the request body
and the answer must fit the method's `request` and `response` schemas (known properties, types,
enums; int64 and uint64 travel as strings, as Discovery says). The same interface as
`openapi.Contract`, so `FakeCloud` uses either.

    contract = DiscoveryContract(document_path, "/compute/v1/")
    problems = contract.check_request("POST", "/compute/v1/projects/p/zones/z/instances", {}, body, {})
"""
from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

_TYPES = {"string": str, "boolean": bool, "object": dict, "array": list}


@cache
def _document(path: str) -> dict:
    return json.loads(Path(path).read_text())


def compute_v1() -> Path:
    """Where google-api-python-client keeps Compute Engine v1's Discovery document."""
    import googleapiclient

    return Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "compute.v1.json"


class DiscoveryContract:
    def __init__(self, document: Path, prefix: str):
        self.document = _document(str(document))
        self.prefix = prefix
        self.scope = re.compile(re.escape(prefix))
        self.methods = [(m["httpMethod"], self._template(m.get("flatPath") or m["path"]), m)
                        for m in self._all(self.document.get("resources", {}))]

    def _all(self, resources: dict):
        for resource in resources.values():
            yield from resource.get("methods", {}).values()
            yield from self._all(resource.get("resources", {}))

    def _template(self, path: str) -> re.Pattern:
        return re.compile(re.escape(self.prefix) + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)))

    def method(self, verb: str, path: str) -> dict | None:
        return next((m for http, template, m in self.methods if http == verb and template.fullmatch(path)), None)

    def check_request(self, verb: str, path: str, query: dict, body, headers: dict) -> list[str]:
        method = self.method(verb, path)
        if method is None:
            return [f"{verb} {path} is no method of {self.document['name']} {self.document['version']}"]
        where = method["id"]
        parameters = method.get("parameters", {})
        problems = []
        for key, value in query.items():
            spec = parameters.get(key) or self.document.get("parameters", {}).get(key)
            if spec is None or spec.get("location") != "query":
                problems.append(f"{where}: ?{key} is not a parameter")
            else:
                problems += self._scalar(spec, value, f"{where}: ?{key}", as_text=True)
        wanted = method.get("request", {}).get("$ref")
        if wanted:
            problems += self._value({"$ref": wanted}, body, f"{where}: body") if body is not None \
                else [f"{where}: the body is missing"]
        elif body is not None:
            problems.append(f"{where}: takes no body")
        return problems

    def check_response(self, verb: str, path: str, query: dict, status: int, answer) -> list[str]:
        method = self.method(verb, path)
        wanted = (method or {}).get("response", {}).get("$ref")
        return self._value({"$ref": wanted}, answer, f"{method['id']} answer") if wanted else []

    def _value(self, schema: dict, value, where: str) -> list[str]:
        if "$ref" in schema:
            schema = self.document["schemas"][schema["$ref"]]
        kind = schema.get("type")
        if kind == "object":
            if not isinstance(value, dict):
                return [f"{where}: {value!r} is not an object"]
            problems = []
            known, extra = schema.get("properties", {}), schema.get("additionalProperties")
            for key, item in value.items():
                if key in known:
                    problems += self._value(known[key], item, f"{where}.{key}")
                elif extra:
                    problems += self._value(extra, item, f"{where}.{key}")
                else:
                    problems.append(f"{where}: unknown property {key!r}")
            return problems
        if kind == "array":
            if not isinstance(value, list):
                return [f"{where}: {value!r} is not an array"]
            return [p for n, item in enumerate(value) for p in self._value(schema["items"], item, f"{where}[{n}]")]
        return self._scalar(schema, value, where)

    @staticmethod
    def _scalar(schema: dict, value, where: str, as_text: bool = False) -> list[str]:
        kind, text = schema.get("type"), isinstance(value, str)
        if kind == "integer":
            ok = (text and re.fullmatch(r"-?\d+", value)) if as_text else isinstance(value, int) and \
                not isinstance(value, bool)
        elif kind == "boolean" and as_text:
            ok = value in ("true", "false")
        elif kind == "string" and schema.get("format") in ("int64", "uint64"):
            ok = text and re.fullmatch(r"-?\d+", value)
        else:
            ok = isinstance(value, _TYPES.get(kind, object))
        if not ok:
            return [f"{where}: {value!r} is not {schema.get('format') or kind}"]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{where}: {value!r} is not one of {schema['enum'][:6]}"]
        return []
