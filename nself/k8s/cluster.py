"""Talking to a cluster: the official `kubernetes` client (imported lazily) for kubeconfig,
contexts, auth and TLS; raw REST paths from nself.k8s.resources, so one list call per
kind and no discovery round trips."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator

from nself.errors import Exit, NselfError
from nself.k8s.resources import BY_KIND, Resource, for_object

FIELD_MANAGER = "nself"


class Cluster:
    def __init__(self, kubeconfig: str | None = None, context: str | None = None):
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        configuration = client.Configuration()
        # The client reads $KUBECONFIG once, at import: read it now, per call.
        config_file = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        try:
            config.load_kube_config(config_file=config_file, context=context,
                                    client_configuration=configuration)
        except (ConfigException, FileNotFoundError, TypeError) as exc:
            raise NselfError(f"cannot use the kube context {context or '(current)'}: {exc}",
                             code=Exit.KUBERNETES,
                             hint="check KUBECONFIG and `nself k8s.context.list`; pass --context") from None
        configuration.retries = 0
        self.server = configuration.host
        self.api = client.ApiClient(configuration)
        self.requests = 0

    # -- one request -------------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, body=None, content_type: str | None = None,
                query: dict | None = None, stream: bool = False, timeout: float = 30):
        from urllib3.exceptions import HTTPError

        self.requests += 1
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            call = self.api.param_serialize(method, path, query_params=list((query or {}).items()),
                                            header_params=headers, body=body, auth_settings=["BearerToken"])
            response = self.api.call_api(*call, _request_timeout=None if stream else timeout)
        except HTTPError as exc:
            raise NselfError(f"the Kubernetes API at {self.server} is unreachable ({type(exc).__name__})",
                             code=Exit.KUBERNETES,
                             hint="check the context (`nself k8s.context`), the network, and that "
                                  "the cluster is up") from None
        if response.status >= 400:
            raise _api_error(response.status, response.read(), method, path)
        if stream:
            return response.response
        data = response.read()
        return json.loads(data) if data else {}

    def request_text(self, method: str, path: str, *, query: dict | None = None) -> str:
        response = self.request(method, path, query=query, stream=True)
        try:
            return response.read().decode(errors="replace")
        finally:
            response.release_conn()

    # -- verbs -----------------------------------------------------------------------------------------------
    def apply(self, obj: dict, namespace: str | None, *, dry_run: bool = False) -> dict:
        """Server-side apply with field manager `nself` (creates what does not exist)."""
        res = for_object(obj)
        query = {"fieldManager": FIELD_MANAGER, "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        return self.request("PATCH", res.path(namespace, obj["metadata"]["name"]),
                            body=json.dumps(obj), content_type="application/apply-patch+yaml",
                            query=query)

    def list(self, res: Resource, namespace: str | None, selector: str | None = None) -> list[dict]:
        query = {"labelSelector": selector} if selector else {}
        return self.request("GET", res.path(namespace), query=query).get("items", [])

    def get(self, res: Resource, namespace: str | None, name: str, sub: str | None = None) -> dict:
        return self.request("GET", res.path(namespace, name, sub))

    def patch(self, res: Resource, namespace: str | None, name: str, body: dict | list,
              sub: str | None = None, *, dry_run: bool = False) -> dict:
        """A JSON merge patch (a dict) or a JSON patch (a list of operations)."""
        query = {"dryRun": "All"} if dry_run else {}
        kind = "json-patch+json" if isinstance(body, list) else "merge-patch+json"
        return self.request("PATCH", res.path(namespace, name, sub), body=body,
                            content_type=f"application/{kind}", query=query)

    def delete(self, res: Resource, namespace: str | None, name: str, *, dry_run: bool = False) -> dict:
        query = {"propagationPolicy": "Background"}
        if dry_run:
            query["dryRun"] = "All"
        return self.request("DELETE", res.path(namespace, name), query=query)

    def watch(self, res: Resource, namespace: str | None, *, selector: str | None = None,
              timeout: int = 60, resource_version: str | None = None) -> Iterator[dict]:
        """Watch events (the watch API, not polling) until `timeout` seconds pass."""
        query = {"watch": "true", "timeoutSeconds": str(int(timeout))}
        if selector:
            query["labelSelector"] = selector
        if resource_version:
            query["resourceVersion"] = resource_version
        response = self.request("GET", res.path(namespace), query=query, stream=True)
        buffer = b""
        try:
            for chunk in response.stream(4096, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            response.release_conn()


def resource(kind: str) -> Resource:
    for (_, known), res in BY_KIND.items():
        if known.lower() == kind.lower() or kind.lower() in (res.plural, *res.short):
            return res
    raise NselfError(f"unknown kind {kind!r}", code=Exit.USAGE,
                     hint="e.g. deployment, statefulset, service, pod, configmap, ingress")


def _api_error(status: int, body: bytes, method: str, path: str) -> NselfError:
    """The API's refusal as an NselfError (exit 9) carrying the HTTP `status` (409: exists)."""
    error = _refusal(status, body, method, path)
    error.status = status
    return error


def _refusal(status: int, body: bytes, method: str, path: str) -> NselfError:
    try:
        message = json.loads(body).get("message") or ""
    except (TypeError, ValueError):
        message = body.decode(errors="replace")[:200]
    if status in (401, 403):
        return NselfError(f"the cluster refused {method} {path}: {message}", code=Exit.KUBERNETES,
                          hint="check the credentials of the kube context (`nself k8s.context`)")
    if status == 404:
        return NselfError(f"not found: {message}", code=Exit.KUBERNETES,
                          hint="check the name, the namespace (--env / --namespace) and the context")
    return NselfError(f"the Kubernetes API answered {status} to {method} {path}: {message}",
                      code=Exit.KUBERNETES, hint="see the message above")
