"""Talking to a cluster: the official `kubernetes` client (imported lazily) for kubeconfig,
contexts, auth and TLS; raw REST paths from nself.k8s.resources, so one list call per
kind and no discovery round trips."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
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
        from yaml import YAMLError

        try:
            with _credential_plugin_errors() as plugin_errors:
                config.load_kube_config(config_file=config_file, context=context,
                                        client_configuration=configuration)
        except (ConfigException, OSError, TypeError, ValueError, AttributeError, YAMLError) as exc:
            # ValueError: binary files and a certificate that is not base64; YAMLError: not YAML;
            # OSError: a directory or an unreadable file; AttributeError: YAML that is no mapping.
            problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise NselfError(f"cannot use the kube context {context or '(current)'} from {config_file}: "
                             f"{problem}", code=Exit.KUBERNETES,
                             hint="check KUBECONFIG and `nself k8s.context.list`; pass --context") from None
        if plugin_errors:
            # The client logs a failing exec plugin and carries on without credentials.
            raise NselfError(f"the credential plugin of the kube context {context or '(current)'} "
                             f"failed: {plugin_errors[0]}", code=Exit.KUBERNETES,
                             hint="install the plugin the kubeconfig's `users[].user.exec.command` "
                                  "names (e.g. aws, gke-gcloud-auth-plugin, kubelogin) or log in with it")
        configuration.retries = 0
        # One request ends within this many seconds (NSELF_KUBE_DEADLINE); watches and log
        # streams have their own ends.
        self.deadline = float(os.environ.get("NSELF_KUBE_DEADLINE") or 60)
        self.server = configuration.host
        self.api = client.ApiClient(configuration)
        self.requests = 0

    # -- one request -------------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, body=None, content_type: str | None = None,
                query: dict | None = None, stream: bool = False, timeout: float = 30):
        self.requests += 1
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        call = self.api.param_serialize(method, path, query_params=list((query or {}).items()),
                                        header_params=headers, body=body, auth_settings=["BearerToken"])
        if stream:
            response = self._send(call, None)
            if response.status >= 400:
                raise _api_error(response.status, response.read(), method, path)
            return response.response
        status, data = _within(self.deadline, lambda: self._status_and_body(call, timeout),
                               f"{method} {path} on {self.server}")
        if status >= 400:
            raise _api_error(status, data, method, path)
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = None
        if not isinstance(answer, dict):   # an HTML login page, a proxy's `[]`: not Kubernetes
            raise NselfError(f"{self.server} did not answer {method} {path} as a Kubernetes API does "
                             f"(got {data[:60]!r})", code=Exit.KUBERNETES,
                             hint="check the server address of the kube context; a proxy or login "
                                  "page may be in the way")
        return answer

    def _send(self, call, timeout):
        from urllib3.exceptions import HTTPError

        try:
            return self.api.call_api(*call, _request_timeout=timeout)
        except HTTPError as exc:
            raise _unreachable(self.server, exc) from None

    def _status_and_body(self, call, timeout) -> tuple[int, bytes]:
        from urllib3.exceptions import HTTPError

        response = self._send(call, timeout)
        try:
            return response.status, response.read()
        except HTTPError as exc:
            raise _unreachable(self.server, exc) from None

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


@contextlib.contextmanager
def _credential_plugin_errors():
    """Collect what the kubernetes client logs at ERROR while it loads a kubeconfig (its exec
    plugin failures), instead of Python's default `ERROR:root:` line on stderr."""
    found: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            found.append(record.getMessage().strip().splitlines()[0] if record.getMessage().strip()
                         else "no message")
    handler = Collect(logging.ERROR)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield found
    finally:
        root.removeHandler(handler)


def _within(seconds: float, call, what: str):
    """call() with an overall deadline. urllib3's timeouts apply to each socket read, so an API
    (or a proxy in front of it) trickling a byte at a time would hold a request forever; the
    call runs on a daemon thread that is abandoned when the deadline passes."""
    done: dict = {}

    def work():
        try:
            done["value"] = call()
        except BaseException as exc:    # noqa: BLE001 - re-raised in the caller's thread
            done["error"] = exc
    worker = threading.Thread(target=work, daemon=True, name="nself-kube-request")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise NselfError(f"no complete answer to {what} within {seconds:g} s", code=Exit.KUBERNETES,
                         hint="check the cluster and any proxy in front of it; NSELF_KUBE_DEADLINE "
                              "sets the limit in seconds")
    if "error" in done:
        raise done["error"]
    return done["value"]


def resource(kind: str) -> Resource:
    for (_, known), res in BY_KIND.items():
        if known.lower() == kind.lower() or kind.lower() in (res.plural, *res.short):
            return res
    raise NselfError(f"unknown kind {kind!r}", code=Exit.USAGE,
                     hint="e.g. deployment, statefulset, service, pod, configmap, ingress")


def _unreachable(server: str, exc: Exception) -> NselfError:
    import ssl

    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(reason):
        return NselfError(f"the TLS certificate of the Kubernetes API at {server} is not trusted: {reason}",
                          code=Exit.KUBERNETES,
                          hint="give the cluster's CA (certificate-authority-data in the kubeconfig, "
                               "or `nself k8s.context.add --certificate-authority FILE`)")
    return NselfError(f"the Kubernetes API at {server} is unreachable ({type(exc).__name__})",
                      code=Exit.KUBERNETES,
                      hint="check the context (`nself k8s.context`), the network, and that the cluster is up")


def _api_error(status: int, body: bytes, method: str, path: str) -> NselfError:
    """The API's refusal as an NselfError (exit 9) carrying the HTTP `status` (409: exists)."""
    error = _refusal(status, body, method, path)
    error.status = status
    return error


def _refusal(status: int, body: bytes, method: str, path: str) -> NselfError:
    try:
        data = json.loads(body)
        message = (data.get("message") if isinstance(data, dict) else None) or json.dumps(data)[:200]
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
