"""A Kubernetes API server for tests: kmock's KubernetesEmulator, served by kmock.Server on
127.0.0.1 in a background thread, with the gaps that matter fixed.

kmock 0.8 parses `/api/v1/namespaces…` wrongly (500), has no PUT, no server-side-apply create,
ignores labelSelector, dryRun and watch timeouts, serves lists without `kind`, reports the core
group as `/v1`, returns the Deployment for `/scale`, streams watches as octet-stream, chokes on
protobuf bodies (nself.testing.kubeproto decodes kubectl's), and keeps an ever-growing request
log. This server keeps kmock's HTTP server,
discovery and error format, and answers resource requests itself: CRUD, PUT, JSON merge and
strategic-merge patches (as merges), server-side apply (create or merge), JSON patches,
label/field selectors, dry runs, generations, resourceVersions, `/scale` and `/status`,
watches with `timeoutSeconds`, cascading deletes by ownerReferences. `kubectl --server …` and
the `kubernetes` client both talk to it. It runs no controllers: `Controller` plays one.

Like a real API server it refuses a body whose kind, apiVersion or namespace differs from the
URL (400) and one the Kubernetes schema refuses (422; unknown fields too with
`fieldValidation=Strict`), checked with kubernetes-validate's files after every create, update
and patch. What it serves (`SERVED`) is its own table, not the client's
`nself.k8s.resources`: a wrong plural on either side fails a test instead of passing both.
"""
from __future__ import annotations

import asyncio
import collections
import copy
import datetime
import itertools
import json
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
import yaml

from nself.k8s.resources import Resource
from nself.testing import schema

SCHEMA_VERSION = "1.33"        # the release whose schema bodies are checked against
# (group, version, plural, kind, namespaced, subresources, short names), as the Kubernetes API
# reference names them; group/version/kind must have a schema file (checked at start).
BUILTIN = tuple(Resource(*row) for row in (
    ("", "v1", "namespaces", "Namespace", False, ("status",), ("ns",)),
    ("", "v1", "configmaps", "ConfigMap", True, (), ("cm",)),
    ("", "v1", "secrets", "Secret", True),
    ("", "v1", "services", "Service", True, ("status",), ("svc",)),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("status",), ("pvc",)),
    ("", "v1", "pods", "Pod", True, ("status", "log", "exec", "portforward"), ("po",)),
    ("", "v1", "events", "Event", True, (), ("ev",)),
    ("", "v1", "serviceaccounts", "ServiceAccount", True, (), ("sa",)),
    ("apps", "v1", "deployments", "Deployment", True, ("status", "scale"), ("deploy",)),
    ("apps", "v1", "statefulsets", "StatefulSet", True, ("status", "scale"), ("sts",)),
    ("apps", "v1", "daemonsets", "DaemonSet", True, ("status",), ("ds",)),
    ("apps", "v1", "replicasets", "ReplicaSet", True, ("status", "scale"), ("rs",)),
    ("apps", "v1", "controllerrevisions", "ControllerRevision", True),
    ("batch", "v1", "jobs", "Job", True, ("status",)),
    ("batch", "v1", "cronjobs", "CronJob", True, ("status",), ("cj",)),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", True, ("status",), ("ing",)),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, (), ("netpol",)),
    ("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ("status",), ("hpa",)),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("status",), ("pdb",)),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ("coordination.k8s.io", "v1", "leases", "Lease", True),
))
# Custom resources, as a cluster with their CRDs installed serves them (Gateway API's HTTPRoute for
# canary weights). Their CRD schemas are not vendored: bodies are checked against the URL only.
CUSTOM = tuple(Resource(*row) for row in (
    ("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", True, ("status",)),
))
SERVED = BUILTIN + CUSTOM
BY_PLURAL = {(r.group, r.version, r.plural): r for r in SERVED}

_PATH = re.compile(r"^/(?:api/(?P<cv>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
                   r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<plural>[^/]+)"
                   r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge(base: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386): maps merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):  # strategic-merge directives: not modelled
            continue
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def json_patch(doc: Any, ops: list[dict]) -> Any:
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1] if parts else None
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if op["op"] == "add":
                    parent.insert(index, op["value"])
                else:
                    parent[index] = op["value"]
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                parent.pop(last, None)
        else:
            raise ApiError(422, "Invalid", f"unsupported JSON patch op {op['op']!r}")
    return doc


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in re.split(r",(?![^(]*\))", selector))):
        match = re.match(r"^(!?)([\w./-]+)\s*(==|=|!=|\s+in\s+|\s+notin\s+)?\s*(.*)$", term)
        if not match:
            raise ApiError(400, "BadRequest", f"invalid label selector {selector!r}")
        negate, key, op, value = match.groups()
        op = (op or "").strip()
        if not op:
            if bool(key in labels) == bool(negate):
                return False
        elif op in ("=", "=="):
            if labels.get(key) != value:
                return False
        elif op == "!=":
            if labels.get(key) == value:
                return False
        else:
            values = {v.strip() for v in value.strip("()").split(",")}
            if (labels.get(key) in values) != (op == "in"):
                return False
    return True


def _field(obj: dict, path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _fields_match(selector: str, obj: dict) -> bool:
    for term in filter(None, selector.split(",")):
        key, op, value = re.match(r"^([\w.]+)(==|=|!=)(.*)$", term).groups()
        actual = "" if _field(obj, key) is None else str(_field(obj, key))
        if (actual == value) != (op != "!="):
            return False
    return True


class KubeAPI(kmock.KubernetesEmulator):
    """The emulator with resource requests answered by `_serve_resource`."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for res in SERVED:
            assert res in CUSTOM or schema.validator(SCHEMA_VERSION, res.kind, res.api_version), \
                f"no schema for {res}"
            key = f"{res.group}/{res.version}/{res.plural}" if res.group else f"{res.version}/{res.plural}"
            self.resources[key] = kmock.ResourceInfo(
                kind=res.kind, namespaced=res.namespaced, singular=res.kind.lower(),
                shortnames=set(res.short), subresources=set(res.subresources),
                verbs={"create", "delete", "get", "list", "patch", "update", "watch"})
        self.store: dict[tuple[str, str, str, str], dict] = {}
        self.counter = itertools.count(1)
        self.resource_version = 0
        self.request_count = 0
        self.request_log: collections.deque = collections.deque(maxlen=200)   # bounded on purpose
        self.watchers: list[tuple[Resource, str | None, dict, asyncio.Queue]] = []
        self._requests = collections.deque(maxlen=50)   # kmock's own log, bounded too
        self.token: str | None = None                     # set it to require `Bearer <token>`

    async def _serve_version(self, request):
        """kmock lists subresources with their parent's short names; kubectl then warns."""
        body = await super()._serve_version(request)
        for entry in body["resources"]:
            if "/" in entry["name"]:
                entry["shortNames"], entry["categories"] = [], []
        return body

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        self.request_count += 1
        self.request_log.append((raw.method, raw.path_qs))
        if self.token and raw.headers.get("Authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized", "Unauthorized")
        match = _PATH.match(raw.path)
        if match:
            key = ("", "v1", match["plural"]) if match["cv"] else \
                (match["group"], match["version"], match["plural"])
            if key in BY_PLURAL:
                try:
                    return await self._serve_resource(raw, BY_PLURAL[key], match)
                except ApiError as exc:
                    return _status(exc.code, exc.reason, exc.message)
        if raw.path == "/api/v1":   # kmock says groupVersion "/v1"
            response = await super().__call__(raw)
            body = json.loads(response.body)
            body["groupVersion"] = "v1"
            return aiohttp.web.json_response(body)
        return await super().__call__(raw)

    # -- resource requests -----------------------------------------------------------------------------
    async def _serve_resource(self, raw, res: Resource, match) -> aiohttp.web.StreamResponse:
        accept = raw.headers.get("Accept", "")
        if "protobuf" in accept and "json" not in accept and "*/*" not in accept:
            raise ApiError(406, "NotAcceptable", "this test server speaks JSON only")
        namespace, name, sub = match["namespace"], match["name"], match["sub"]
        if res.kind == "Namespace" and name is None and match["namespace"]:
            name, namespace = match["namespace"], None    # /api/v1/namespaces/<name>
        if not res.namespaced:
            namespace = None
        query = raw.query
        dry = query.get("dryRun") == "All"
        strict = query.get("fieldValidation") == "Strict"
        method = raw.method
        if name is None:
            if method == "GET" and query.get("watch") in ("true", "1"):
                return await self._watch(raw, res, namespace, query)
            if method == "GET":
                return aiohttp.web.json_response(self._list(res, namespace, query))
            if method == "POST":
                body = await self._body(raw)
                return aiohttp.web.json_response(self._create(res, namespace, body, dry, strict), status=201)
            raise ApiError(405, "MethodNotAllowed", f"{method} on a collection is not supported")
        key = (res.group, res.plural, namespace or "", name)
        if method == "GET" and sub == "log":
            return aiohttp.web.Response(text="", content_type="text/plain")
        if method == "GET":
            return aiohttp.web.json_response(self._scale(res, self._get(key)) if sub == "scale"
                                             else self._get(key))
        if method == "DELETE":
            return aiohttp.web.json_response(self._delete(key, dry))
        body = await self._body(raw)
        content = raw.headers.get("Content-Type", "")
        current = self.store.get(key)
        if method == "PUT":
            if current is None:
                raise _not_found(res, name)
            new = self._put_scale(current, body) if sub == "scale" else \
                {**current, "status": body.get("status", {})} if sub == "status" else body
            stored = self._update(res, key, new, dry, body.get("metadata", {}).get("resourceVersion"), strict)
            return aiohttp.web.json_response(self._scale(res, stored) if sub == "scale" else stored)
        if method == "PATCH":
            if "apply-patch" in content:
                if current is None:
                    body.setdefault("metadata", {})["name"] = name
                    return aiohttp.web.json_response(self._create(res, namespace, body, dry, strict), status=201)
                new = merge(current, body)
            elif current is None:
                raise _not_found(res, name)
            elif "json-patch" in content:
                base = self._scale(res, current) if sub == "scale" else current
                patched = json_patch(base, body)
                new = self._put_scale(current, patched) if sub == "scale" else patched
            elif sub == "scale":
                new = self._put_scale(current, merge(self._scale(res, current), body))
            else:
                new = merge(current, body)
            stored = self._update(res, key, new, dry, None, strict)
            return aiohttp.web.json_response(self._scale(res, stored) if sub == "scale" else stored)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported")

    @staticmethod
    async def _body(raw) -> dict:
        if "protobuf" in raw.headers.get("Content-Type", ""):      # kubectl's built-in kinds
            from nself.testing import kubeproto

            try:
                return kubeproto.decode(await raw.read())
            except kubeproto.Undecodable as exc:
                raise ApiError(415, "UnsupportedMediaType", f"protobuf body: {exc}") from None
        text = await raw.text()
        try:
            return yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError:
            raise ApiError(400, "BadRequest", "the request body is not JSON or YAML") from None

    def _list(self, res: Resource, namespace: str | None, query) -> dict:
        items = [o for (g, p, ns, _), o in sorted(self.store.items())
                 if g == res.group and p == res.plural and (namespace is None or ns == namespace)
                 and _selected(o, query)]
        return {"apiVersion": res.api_version, "kind": f"{res.kind}List",
                "metadata": {"resourceVersion": str(self.resource_version)}, "items": items}

    def _get(self, key) -> dict:
        if key not in self.store:
            raise _not_found(BY_PLURAL_KEY(key), key[3])
        return self.store[key]

    def _create(self, res: Resource, namespace: str | None, body: dict, dry: bool, strict: bool = False) -> dict:
        _check_target(res, namespace, body)
        meta = body.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", "metadata.name is required")
        namespace = (namespace or meta.get("namespace") or "default") if res.namespaced else None
        if namespace and res.kind != "Namespace" and ("", "namespaces", "", namespace) not in self.store \
                and namespace != "default":
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')
        key = (res.group, res.plural, namespace or "", name)
        if key in self.store:
            raise ApiError(409, "AlreadyExists", f'{res.plural} "{name}" already exists')
        obj = {"apiVersion": res.api_version, "kind": res.kind, **body}
        obj["metadata"] = {**meta, "uid": str(uuid.uuid4()), "creationTimestamp": _now(), "generation": 1}
        if namespace:
            obj["metadata"]["namespace"] = namespace
        if res.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        _check_schema(obj, strict)
        if dry:
            return obj
        return self._store(key, obj, "ADDED")

    def _update(self, res: Resource, key, new: dict, dry: bool, expected_version: str | None,
                strict: bool = False) -> dict:
        _check_target(res, key[2] or None, new)
        current = self.store[key]
        if expected_version and expected_version != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'the object {key[3]} has been modified; please apply '
                                            "your changes to the latest version and try again")
        new = {"apiVersion": res.api_version, "kind": res.kind, **new}
        meta = {**new.get("metadata", {})}
        for field in ("uid", "creationTimestamp", "name", "namespace"):
            if field in current["metadata"]:
                meta[field] = current["metadata"][field]
        generation = current["metadata"].get("generation", 1)
        if new.get("spec") != current.get("spec"):
            generation += 1
        meta["generation"] = generation
        new["metadata"] = meta
        _check_schema(new, strict)
        if dry:
            return new
        return self._store(key, new, "MODIFIED")

    def _delete(self, key, dry: bool) -> dict:
        obj = self._get(key)
        if dry:
            return obj
        del self.store[key]
        self._emit(key, "DELETED", obj)
        uid = obj["metadata"]["uid"]
        for other_key, other in list(self.store.items()):   # cascade, as the garbage collector does
            if any(ref.get("uid") == uid for ref in other["metadata"].get("ownerReferences", [])):
                if other_key in self.store:
                    self._delete(other_key, False)
        if key[1] == "namespaces":
            for other_key in [k for k in self.store if k[2] == key[3]]:
                self._delete(other_key, False)
        return {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": key[3]}}

    def _store(self, key, obj: dict, event: str) -> dict:
        self.resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self.resource_version)
        self.store[key] = obj
        self._emit(key, event, obj)
        return obj

    def _emit(self, key, event: str, obj: dict) -> None:
        for res, namespace, query, queue in list(self.watchers):
            if res.group == key[0] and res.plural == key[1] and (namespace is None or namespace == key[2]) \
                    and _selected(obj, query):
                queue.put_nowait({"type": event, "object": obj})

    @staticmethod
    def _scale(res: Resource, obj: dict) -> dict:
        selector = obj.get("spec", {}).get("selector", {}).get("matchLabels", {})
        return {"apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {k: obj["metadata"][k] for k in ("name", "namespace", "uid", "resourceVersion")
                             if k in obj["metadata"]},
                "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
                "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                           "selector": ",".join(f"{k}={v}" for k, v in selector.items())}}

    @staticmethod
    def _put_scale(current: dict, scale: dict) -> dict:
        return merge(current, {"spec": {"replicas": scale.get("spec", {}).get("replicas", 1)}})

    async def _watch(self, raw, res: Resource, namespace: str | None, query) -> aiohttp.web.StreamResponse:
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(raw)
        queue: asyncio.Queue = asyncio.Queue()
        since = query.get("resourceVersion")
        if not since or since == "0":
            for obj in self._list(res, namespace, query)["items"]:
                queue.put_nowait({"type": "ADDED", "object": obj})
        watcher = (res, namespace, dict(query), queue)
        self.watchers.append(watcher)
        timeout = float(query.get("timeoutSeconds") or 300)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    event = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
                await response.write(json.dumps(event).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.watchers.remove(watcher)
        await response.write_eof()
        return response


def BY_PLURAL_KEY(key) -> Resource:  # noqa: N802 - a lookup, named like the tables
    return next(r for r in SERVED if r.group == key[0] and r.plural == key[1])


def _selected(obj: dict, query) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    if query.get("labelSelector") and not _selector_matches(query["labelSelector"], labels):
        return False
    if query.get("fieldSelector") and not _fields_match(query["fieldSelector"], obj):
        return False
    return True


def _check_target(res: Resource, namespace: str | None, body: dict) -> None:
    """The body must be the kind the URL names, in the URL's namespace (as the API server's
    decoder and namespace check refuse it: 400)."""
    for field, expected in (("kind", res.kind), ("apiVersion", res.api_version)):
        if body.get(field) not in (None, expected):
            raise ApiError(400, "BadRequest", f"the {field} of the object ({body[field]}) does not match the "
                                              f"expected {field} ({expected}) of {res.plural}")
    given = (body.get("metadata") or {}).get("namespace")
    if res.namespaced and namespace and given and given != namespace:
        raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                                          f"sent on the request ({given} ≠ {namespace})")


def _check_schema(obj: dict, strict: bool) -> None:
    error = schema.problem(obj, SCHEMA_VERSION, strict)
    if error:
        raise ApiError(422, "Invalid", f"{obj['kind']} {obj['metadata'].get('name')!r} is invalid: {error}")


def _not_found(res: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{res.plural}.{res.group or "core"} "{name}" not found')


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    return aiohttp.web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                      "status": "Failure", "message": message, "reason": reason,
                                      "code": code}, status=code)


class KubeServer:
    """KubeAPI served on 127.0.0.1 from a background thread (for synchronous tests and tools)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kube-api", daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("the test Kubernetes API did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.loop.run_forever()

    async def _start(self) -> None:
        self.api = KubeAPI()
        await self.api.__aenter__()
        self.server = kmock.Server(self.api)
        await self.server.__aenter__()
        self.url = str(self.server.url).rstrip("/")
        self._ready.set()

    def kubeconfig(self, path: Path, context: str = "test", namespace: str | None = None,
                   token: str = "test-token") -> Path:
        """A kubeconfig for this server (kubectl and the kubernetes client both read it)."""
        ctx: dict = {"cluster": context, "user": context}
        if namespace:
            ctx["namespace"] = namespace
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": token}}],
            "contexts": [{"name": context, "context": ctx}]}))
        path.chmod(0o600)
        return path

    def call(self, fn, *args):
        """Run `fn(*args)` on the server's loop (the store is not thread-safe)."""
        async def run():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def objects(self, kind: str, namespace: str | None = None) -> list[dict]:
        return self.call(lambda: [copy.deepcopy(o) for (g, p, ns, _), o in sorted(self.api.store.items())
                                  if o["kind"] == kind and (namespace is None or ns == namespace)])

    def stop(self) -> None:
        async def stop():
            await self.server.__aexit__(None, None, None)
            await self.api.__aexit__(None, None, None)
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
