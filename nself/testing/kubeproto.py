"""Kubernetes protobuf request bodies → the JSON objects they encode (for the test API server).

kubectl sends built-in objects as `application/vnd.kubernetes.protobuf`: the magic `k8s\\0`,
then a `runtime.Unknown` {typeMeta{apiVersion, kind}, raw (the object's message), …}. This
decoder reads the protobuf wire format and names fields from the table below, which holds the
field numbers of the kinds `kubectl create` makes (Deployment, Namespace, ConfigMap, Secret)
and what they contain. The Go encoder writes non-pointer fields even when empty; JSON omits
them, so empty strings, false, empty messages and lists are dropped. A kind or a field the
table does not know is an error naming it (never silently lost): add it to the table.
"""
from __future__ import annotations

import base64
import datetime

MAGIC = b"k8s\x00"


class Undecodable(Exception):
    pass


# message → {field number: (JSON name, type)}; "[]T" repeated, "{}T" map<string, T>
_META = {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
         4: ("selfLink", "string"), 5: ("uid", "string"), 6: ("resourceVersion", "string"),
         7: ("generation", "int"), 8: ("creationTimestamp", "Time"), 9: ("deletionTimestamp", "Time"),
         10: ("deletionGracePeriodSeconds", "int"), 11: ("labels", "{}string"), 12: ("annotations", "{}string"),
         13: ("ownerReferences", "[]OwnerReference"), 14: ("finalizers", "[]string")}
SCHEMA: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes"), 3: ("contentEncoding", "string"),
                4: ("contentType", "string")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": _META,
    "OwnerReference": {1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"),
                       5: ("apiVersion", "string"), 6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")},
    "LabelSelector": {1: ("matchLabels", "{}string"), 2: ("matchExpressions", "[]LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "[]string")},
    "Deployment": {1: ("metadata", "ObjectMeta"), 2: ("spec", "DeploymentSpec"), 3: ("status", "Ignored")},
    "DeploymentSpec": {1: ("replicas", "int"), 2: ("selector", "LabelSelector"), 3: ("template", "PodTemplateSpec"),
                       4: ("strategy", "DeploymentStrategy"), 5: ("minReadySeconds", "int"),
                       6: ("revisionHistoryLimit", "int"), 7: ("paused", "bool"),
                       9: ("progressDeadlineSeconds", "int")},
    "DeploymentStrategy": {1: ("type", "string"), 2: ("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "IntOrString"), 2: ("maxSurge", "IntOrString")},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "PodSpec": {2: ("containers", "[]Container"), 3: ("restartPolicy", "string"),
                4: ("terminationGracePeriodSeconds", "int"), 6: ("dnsPolicy", "string"),
                7: ("nodeSelector", "{}string"), 8: ("serviceAccountName", "string"), 9: ("serviceAccount", "string"),
                10: ("nodeName", "string"), 11: ("hostNetwork", "bool"), 12: ("hostPID", "bool"),
                13: ("hostIPC", "bool"), 14: ("securityContext", "Empty"), 16: ("hostname", "string"),
                17: ("subdomain", "string"), 19: ("schedulerName", "string"), 20: ("initContainers", "[]Container"),
                24: ("priorityClassName", "string")},
    "Container": {1: ("name", "string"), 2: ("image", "string"), 3: ("command", "[]string"), 4: ("args", "[]string"),
                  5: ("workingDir", "string"), 6: ("ports", "[]ContainerPort"), 7: ("env", "[]EnvVar"),
                  8: ("resources", "ResourceRequirements"), 13: ("terminationMessagePath", "string"),
                  14: ("imagePullPolicy", "string"), 16: ("stdin", "bool"), 17: ("stdinOnce", "bool"),
                  18: ("tty", "bool"), 20: ("terminationMessagePolicy", "string")},
    "ContainerPort": {1: ("name", "string"), 2: ("hostPort", "int"), 3: ("containerPort", "int"),
                      4: ("protocol", "string"), 5: ("hostIP", "string")},
    "EnvVar": {1: ("name", "string"), 2: ("value", "string")},
    "ResourceRequirements": {1: ("limits", "{}Quantity"), 2: ("requests", "{}Quantity")},
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec"), 3: ("status", "Ignored")},
    "NamespaceSpec": {1: ("finalizers", "[]string")},
    "ConfigMap": {1: ("metadata", "ObjectMeta"), 2: ("data", "{}string"), 3: ("binaryData", "{}bytes"),
                  4: ("immutable", "bool")},
    "Secret": {1: ("metadata", "ObjectMeta"), 2: ("data", "{}bytes"), 3: ("type", "string"),
               4: ("stringData", "{}string"), 5: ("immutable", "bool")},
    "Empty": {},             # securityContext: kubectl create sends it empty
}
IGNORED = "Ignored"          # status: the API server drops it on create and update


def decode(body: bytes) -> dict:
    """The JSON object of a protobuf request body; Undecodable says what is missing."""
    if not body.startswith(MAGIC):
        raise Undecodable("the body does not start with the k8s protobuf magic")
    unknown = _message(body[len(MAGIC):], "Unknown")
    meta = unknown.get("typeMeta") or {}
    kind = meta.get("kind", "")
    if kind not in SCHEMA or kind in ("Unknown", "TypeMeta", "Empty"):
        raise Undecodable(f"protobuf bodies of {kind or 'this kind'} are not in this test server's table")
    obj = _message(base64.b64decode(unknown.get("raw", "")), kind)
    return {"apiVersion": meta.get("apiVersion", ""), "kind": kind, **obj}


def _message(data: bytes, name: str) -> dict:
    fields, out = SCHEMA[name], {}
    for number, value in _fields(data):
        if number not in fields:
            raise Undecodable(f"field {number} of {name} is not in this test server's protobuf table")
        key, kind = fields[number]
        if kind == IGNORED:
            continue
        if kind.startswith("[]"):
            out.setdefault(key, []).append(_value(value, kind[2:]))
        elif kind.startswith("{}"):
            entry = dict(_fields(value))
            out.setdefault(key, {})[entry.get(1, b"").decode()] = _value(entry.get(2, b""), kind[2:])
        else:
            out[key] = _value(value, kind)
    return {k: v for k, v in out.items() if v not in ("", False, {}, [])}


def _value(value, kind: str):
    if kind == "string":
        return value.decode()
    if kind == "int":
        return value - (1 << 64) if value >= 1 << 63 else value
    if kind == "bool":
        return bool(value)
    if kind == "bytes":
        return base64.b64encode(value).decode()
    if kind == "Quantity":
        return dict(_fields(value)).get(1, b"").decode()
    if kind == "IntOrString":
        parts = dict(_fields(value))
        return parts.get(3, b"").decode() if parts.get(1) == 1 else parts.get(2, 0)
    if kind == "Time":
        seconds = dict(_fields(value)).get(1, 0)
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if seconds \
            else ""
    return _message(value, kind)


def _fields(data: bytes):
    """(field number, int | bytes) pairs of one message (varint and length-delimited wire types)."""
    index = 0
    while index < len(data):
        tag, index = _varint(data, index)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, index = _varint(data, index)
        elif wire == 2:
            length, index = _varint(data, index)
            value, index = data[index:index + length], index + length
        else:
            raise Undecodable(f"wire type {wire} (field {number}) is not used by Kubernetes objects")
        yield number, value


def _varint(data: bytes, index: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if index >= len(data):
            raise Undecodable("the protobuf body ends inside a number")
        byte = data[index]
        index += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, index
        shift += 7
