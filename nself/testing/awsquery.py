"""The AWS Query protocol as EC2 speaks it (and IAM: the `query` protocol, whose lists are
`Name.member.N` and whose answers sit in a `<ActionResult>` wrapper), checked against botocore's
service model (botocore is in the test extra only). A request's form fields are read back into the operation's input
shape (a field the model does not name is a problem), validated by botocore's own parameter
validator, and serialised again by botocore's EC2 serializer, which must give the same fields:
so nself's client and botocore agree on every name, index and value. Answers are written from
dicts in the output shape's member names, so a fake cannot send an element the model lacks.

    operation, params, problems = read_request(form)       # form: the decoded POST body
    xml = answer(operation, {"Reservations": [...]})
"""
from __future__ import annotations

import base64
import datetime
import uuid
from functools import cache
from xml.etree.ElementTree import Element, SubElement, tostring

NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"


@cache
def model(service: str = "ec2"):
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def _query_name(member, default: str, protocol: str = "ec2") -> str:
    """botocore's EC2Serializer._get_serialized_name: queryName, else the capitalised locationName
    (QuerySerializer: the locationName as it is, else the member's name)."""
    if protocol == "query":
        return member.serialization.get("name", default)
    if "queryName" in member.serialization:
        return member.serialization["queryName"]
    name = member.serialization.get("name")
    return name[0].upper() + name[1:] if name else default


def read_request(form: dict[str, str], service: str = "ec2") -> tuple[str, dict, list[str]]:
    """(operation name, params in the input shape's member names, problems)."""
    from botocore.serialize import create_serializer
    from botocore.validate import ParamValidator

    ec2 = model(service)
    action, version = form.get("Action", ""), form.get("Version", "")
    if action not in ec2.operation_names:
        return action, {}, [f"Action={action!r} is not an {service.upper()} operation"]
    problems = [] if version == ec2.api_version else [f"{action}: Version={version!r}, not {ec2.api_version}"]
    operation = ec2.operation_model(action)
    fields = [(key.split("."), value) for key, value in form.items() if key not in ("Action", "Version")]
    params = _decode(operation.input_shape, fields, f"{action}: ", problems, ec2.protocol) if fields else {}
    report = ParamValidator().validate(params, operation.input_shape)
    if report.has_errors():
        problems.append(f"{action}: {report.generate_report()}")
    elif not problems:
        again = create_serializer(ec2.protocol).serialize_to_request(params, operation)["body"]
        if {k: str(v) for k, v in again.items()} != form:
            problems.append(f"{action}: botocore serialises these parameters differently: {again}")
    return action, params, problems


def _decode(shape, fields: list[tuple[list[str], str]], where: str, problems: list[str], protocol: str):
    if shape.type_name == "structure":
        members = {_query_name(m, n, protocol): n for n, m in shape.members.items()}
        groups: dict[str, list] = {}
        for parts, value in fields:
            if parts:
                groups.setdefault(parts[0], []).append((parts[1:], value))
            else:
                problems.append(f"{where.rstrip('. ')}: a value where {shape.name} needs fields")
        decoded = {}
        for token, inner in groups.items():
            if token not in members:
                problems.append(f"{where}{token} is not a field of {shape.name}")
                continue
            decoded[members[token]] = _decode(shape.members[members[token]], inner, f"{where}{token}.", problems,
                                              protocol)
        return decoded
    if shape.type_name == "list":
        if protocol == "query" and not shape.serialization.get("flattened"):
            wrapper = shape.member.serialization.get("name", "member")
            if any(parts[:1] != [wrapper] for parts, _ in fields):
                problems.append(f"{where.rstrip('.')}: list items are {wrapper}.N")
            fields = [(parts[1:], value) for parts, value in fields]
        groups = {}
        for parts, value in fields:
            if parts and parts[0].isdigit() and int(parts[0]) >= 1:
                groups.setdefault(int(parts[0]), []).append((parts[1:], value))
            else:
                problems.append(f"{where.rstrip('.')}: list items are numbered from 1")
        if sorted(groups) != list(range(1, len(groups) + 1)):
            problems.append(f"{where.rstrip('.')}: item numbers {sorted(groups)} leave gaps")
        return [_decode(shape.member, groups[i], f"{where}{i}.", problems, protocol) for i in sorted(groups)]
    if len(fields) != 1 or fields[0][0]:
        problems.append(f"{where.rstrip('.')}: {shape.type_name} given as {len(fields)} fields")
        return None
    return _scalar(shape, fields[0][1], where.rstrip("."), problems)


def _scalar(shape, value: str, where: str, problems: list[str]):
    allowed = getattr(shape, "enum", None)
    if allowed and value not in allowed:
        problems.append(f"{where}: {value!r} is not one of {allowed[:8]}")
    if shape.type_name in ("integer", "long"):
        try:
            return int(value)
        except ValueError:
            problems.append(f"{where}: {value!r} is not an integer")
            return None
    if shape.type_name == "blob":
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            problems.append(f"{where}: not base64")
            return None
    if shape.type_name == "boolean":
        if value not in ("true", "false"):
            problems.append(f"{where}: {value!r} is not true or false")
        return value == "true"
    return value


def answer(operation: str, data: dict, service: str = "ec2") -> str:
    """The operation's XML answer from `data` in the output shape's member names. A member the
    model does not have raises KeyError: the fake is wrong, not the client."""
    described = model(service)
    shape = described.operation_model(operation).output_shape
    root = Element(f"{operation}Response", xmlns=NAMESPACE if service == "ec2" else
                   f"https://{service}.amazonaws.com/doc/{described.api_version}/")
    if described.protocol == "query":
        if shape is not None:
            _encode(shape, data, SubElement(root, shape.serialization.get("resultWrapper", f"{operation}Result")),
                    "member")
        SubElement(SubElement(root, "ResponseMetadata"), "RequestId").text = str(uuid.uuid4())
        return tostring(root, encoding="unicode")
    SubElement(root, "requestId").text = str(uuid.uuid4())
    if shape is None:              # e.g. RebootInstances: the model has no output; EC2 says <return>
        if data:
            raise KeyError(f"{operation} has no output, not {sorted(data)}")
        SubElement(root, "return").text = "true"
    else:
        _encode(shape, data, root)
    return tostring(root, encoding="unicode")


def _encode(shape, value, parent: Element, item: str = "item") -> None:
    if shape.type_name == "structure":
        for key, one in value.items():
            if key not in shape.members:
                raise KeyError(f"{shape.name} has no member {key!r}")
            member = shape.members[key]
            _encode(member, one, SubElement(parent, member.serialization.get("name", key)), item)
    elif shape.type_name == "list":
        for one in value:
            _encode(shape.member, one, SubElement(parent, shape.member.serialization.get("name", item)), item)
    elif shape.type_name == "boolean":
        parent.text = "true" if value else "false"
    elif shape.type_name == "timestamp" and isinstance(value, datetime.datetime):
        parent.text = value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    else:
        parent.text = str(value)


def query_error(code: str, message: str) -> str:
    """The query protocol's error document (IAM: `<ErrorResponse><Error><Code>`)."""
    root = Element("ErrorResponse")
    failure = SubElement(root, "Error")
    SubElement(failure, "Type").text = "Sender"
    SubElement(failure, "Code").text = code
    SubElement(failure, "Message").text = message
    SubElement(root, "RequestId").text = "fake-request"
    return tostring(root, encoding="unicode")


def error(code: str, message: str) -> str:
    """EC2's error document (docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)."""
    root = Element("Response")
    failure = SubElement(SubElement(root, "Errors"), "Error")
    SubElement(failure, "Code").text = code
    SubElement(failure, "Message").text = message
    SubElement(root, "RequestID").text = "fake-request"
    return tostring(root, encoding="unicode")
