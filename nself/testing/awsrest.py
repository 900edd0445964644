"""The AWS rest-json protocol (EKS) checked against botocore's service model, as `awsquery` checks
the Query protocol: a request is matched to the operation whose method and requestUri template
fit, its URI labels, query string and JSON body are read into the input shape (a name the model
does not have is a problem), botocore's validator checks them, and botocore's rest-json
serializer must produce the same path, query and body again. Answers are validated against the
output shape, so a fake cannot send a member or a type the model lacks.

    operation, params, problems = read_request("eks", "POST", "/clusters", {}, body)
    problems = check_answer("eks", operation, {"cluster": {...}})
"""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, unquote, urlsplit

from nself.testing.awsquery import model


def _template(uri: str) -> re.Pattern:
    """A requestUri such as /clusters/{name}/node-groups as a regex with one group per label."""
    path = uri.split("?", 1)[0]
    pattern = re.sub(r"\\\{(\w+)(\\\+)?\\\}", lambda m: f"(?P<{m[1]}>{'.+' if m[2] else '[^/]+'})", re.escape(path))
    return re.compile(pattern)


def operation_for(service: str, method: str, path: str):
    """The operation model whose method and URI template match, and the URI labels' values."""
    described = model(service)
    for name in described.operation_names:
        operation = described.operation_model(name)
        if operation.http["method"] != method:
            continue
        match = _template(operation.http["requestUri"]).fullmatch(path)
        if match:
            return operation, {k: unquote(v) for k, v in match.groupdict().items()}
    return None, {}


def _scalar(shape, value: str):
    if shape.type_name in ("integer", "long"):
        return int(value) if value.lstrip("-").isdigit() else value
    if shape.type_name == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


def read_request(service: str, method: str, path: str, query: dict[str, str], body) -> tuple[str, dict, list[str]]:
    """(operation name, params in the input shape's member names, problems)."""
    from botocore.serialize import create_serializer
    from botocore.validate import ParamValidator

    operation, labels = operation_for(service, method, path)
    if operation is None:
        return "", {}, [f"{method} {path} is no {service.upper()} operation"]
    shape, problems, params = operation.input_shape, [], {}
    where = {(m.serialization.get("location"), m.serialization.get("name", n)): n for n, m in shape.members.items()}
    for label, value in labels.items():
        params[where[("uri", label)]] = value
    for key, value in query.items():
        if ("querystring", key) not in where:
            problems.append(f"{operation.name}: ?{key} is not a parameter")
            continue
        name = where[("querystring", key)]
        params[name] = _scalar(shape.members[name], value)
    if body is not None and not isinstance(body, dict):
        problems.append(f"{operation.name}: the body is not a JSON object")
        body = {}
    for key, value in (body or {}).items():
        if (None, key) not in where:
            problems.append(f"{operation.name}: body member {key!r} is not in {shape.name}")
            continue
        params[where[None, key]] = value
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        problems.append(f"{operation.name}: {report.generate_report()}")
    elif not problems:
        again = create_serializer(model(service).protocol).serialize_to_request(params, operation)
        theirs = urlsplit(again["url_path"])
        same_body = json.loads(again["body"] or b"null") == (body or None) if again["body"] else not body
        sent = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (again["query_string"] or {}).items()}
        if unquote(theirs.path) != path or sent != query or not same_body:
            problems.append(f"{operation.name}: botocore sends these parameters as {again['method']} "
                            f"{again['url_path']} {again['query_string']} {again['body']!r}")
    return operation.name, params, problems


def check_answer(service: str, operation: str, answer: dict) -> list[str]:
    """What in a fake's answer the operation's output shape does not allow."""
    from botocore.validate import ParamValidator

    shape = model(service).operation_model(operation).output_shape
    report = ParamValidator().validate(answer, shape)
    return [f"{operation} answer: {report.generate_report()}"] if report.has_errors() else []


def query_of(raw_path: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(raw_path).query, keep_blank_values=True))
