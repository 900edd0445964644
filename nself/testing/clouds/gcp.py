"""Google Compute Engine, checked against the Compute v1 Discovery document (google-api-python-
client's copy): every request's method, query parameters and body, and every answer. The fake
also plays Google's OAuth2 token endpoint: it verifies the service account's RS256 JWT with the
key's public half (issuer, audience, scope, an expiry at most an hour after issue) and hands out
access tokens that the Compute API then requires. Writes answer Operations that are RUNNING, then
DONE when read; `requestId` deduplicates inserts as GCE does. State: zones, the firewall rules,
instances that run after `boot_polls` reads."""
from __future__ import annotations

import base64
import json
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl

from nself.testing.clouds.base import Answer, FakeCloud, now, public
from nself.testing.discovery import DiscoveryContract, compute_v1

_REASONS = {400: "invalid", 401: "authError", 403: "forbidden", 404: "notFound", 409: "alreadyExists",
            429: "rateLimitExceeded", 500: "backendError", 503: "backendError"}


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class GcpFake(FakeCloud):
    name = "gcp"
    token_env = "GOOGLE_APPLICATION_CREDENTIALS"
    prefix = "/compute/v1/projects/nself-test"
    routes = (
        ("GET", r"/zones", "list_zones"),
        ("GET", r"/aggregated/machineTypes", "aggregated_machine_types"),
        ("GET", r"/global/firewalls/(?P<name>[^/]+)", "get_firewall"),
        ("POST", r"/global/firewalls", "insert_firewall"),
        ("GET", r"/(?P<scope>global|zones/[^/]+)/operations/(?P<name>[^/]+)", "get_operation"),
        ("POST", r"/zones/(?P<zone>[^/]+)/instances", "insert_instance"),
        ("GET", r"/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)", "get_instance"),
        ("DELETE", r"/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)", "delete_instance"),
        ("POST", r"/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)/reset", "reset_instance"),
        ("GET", r"/aggregated/instances", "aggregated_instances"),
    )

    def __init__(self, specs=None, **kwargs):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        super().__init__(DiscoveryContract(compute_v1(), "/compute/v1/"), token="", **kwargs)
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = private.public_key()
        self.key = {"type": "service_account", "project_id": "nself-test", "private_key_id": "k1",
                    "private_key": private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()).decode(),
                    "client_email": "nself@nself-test.iam.gserviceaccount.com", "token_uri": f"{self.base}/token"}
        self.key_path = Path(tempfile.mkdtemp(prefix="gcp-key-")) / "key.json"
        self.key_path.write_text(json.dumps(self.key))
        self.key_path.chmod(0o600)
        self.issued: list[str] = []                # access tokens handed out
        self.firewalls: dict[str, dict] = {}
        self.operations: dict[str, dict] = {}
        self.request_ids: dict[str, dict] = {}     # requestId → its operation
        self.reboots: list[str] = []
        self.zones = self.catalog["zones"]
        # set to a message to have the next insert's operation end in that error (a quota, …)
        self.insert_error: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.base}/compute/v1"

    def env(self) -> dict[str, str]:
        return {"NSELF_GCP_API_URL": self.url, self.token_env: str(self.key_path)}

    def stop(self) -> None:
        super().stop()
        self.key_path.unlink(missing_ok=True)

    def error(self, status, code, message):
        return status, {"error": {"code": status, "message": message,
                                  "errors": [{"message": message, "domain": "global",
                                              "reason": _REASONS.get(status, code)}]}}

    # --- OAuth2 ---------------------------------------------------------------------------
    def _serve(self, method, raw_path, headers, raw_body):
        if raw_path == "/token" and method == "POST":
            with self.lock:
                self.requests.append({"method": method, "path": "/token", "query": {}, "body": None,
                                      "at": time.monotonic(), "authorization": None})
                return self.grant(dict(parse_qsl(raw_body.decode())))
        return super()._serve(method, raw_path, headers, raw_body)

    def grant(self, form: dict) -> tuple[int, object, dict]:
        """The token endpoint: a valid JWT bearer assertion gets an access token (RFC 7523)."""
        refused = (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, {})
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {"error": "unsupported_grant_type"}, {}
        claims = self.verified(form.get("assertion", ""))
        if claims is None:
            return refused
        token = f"ya29.fake-{len(self.issued)}-{time.time_ns()}"
        self.issued.append(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}, {}

    def verified(self, jwt: str) -> dict | None:
        """The claims of an RS256 JWT signed by the service account's key, or None."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        parts = jwt.split(".")
        if len(parts) != 3:
            return None
        try:
            header, claims = json.loads(_unb64(parts[0])), json.loads(_unb64(parts[1]))
            self.public_key.verify(_unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
                                   hashes.SHA256())
        except (ValueError, InvalidSignature):
            return None
        fresh = claims.get("iat", 0) <= time.time() + 60 and 0 < claims.get("exp", 0) - claims["iat"] <= 3600 \
            and claims["exp"] > time.time()
        if header.get("alg") != "RS256" or claims.get("iss") != self.key["client_email"] or not fresh or \
                claims.get("aud") != self.key["token_uri"] or "auth/compute" not in claims.get("scope", ""):
            return None
        return claims

    def authorized(self, method, raw_path, header, body):
        return header.removeprefix("Bearer ") in self.issued

    # --- helpers --------------------------------------------------------------------------
    def _link(self, path: str) -> str:
        return f"https://www.googleapis.com/compute/v1/projects/nself-test/{path}"

    def _operation(self, kind: str, target: str, zone: str | None, query: dict) -> tuple[int, dict]:
        """An Operation, RUNNING until read; the same requestId gives the same one."""
        if query.get("requestId") in self.request_ids:
            return 200, public(self.request_ids[query["requestId"]])
        name = f"operation-{next(self.ids)}"
        operation = {"kind": "compute#operation", "id": str(next(self.ids)), "name": name, "operationType": kind,
                     "status": "RUNNING", "targetLink": self._link(target), "insertTime": now(),
                     "selfLink": self._link(f"{f'zones/{zone}' if zone else 'global'}/operations/{name}"),
                     **({"zone": self._link(f"zones/{zone}")} if zone else {})}
        self.operations[name] = operation
        if query.get("requestId"):
            self.request_ids[query["requestId"]] = operation
        return 200, public(operation)

    def _instance(self, zone: str, name: str) -> dict:
        found = self.servers.get(f"{zone}/{name}")
        if found is None:
            raise Answer(self.error(404, "notFound", f"The resource 'projects/nself-test/zones/{zone}/instances/"
                                                     f"{name}' was not found"))
        return found

    # --- handlers -------------------------------------------------------------------------
    def list_zones(self, query, body):
        return 200, {"kind": "compute#zoneList", "items": [
            {"kind": "compute#zone", "name": z, "status": "UP", "region": self._link(f"regions/{z[:-2]}"),
             "selfLink": self._link(f"zones/{z}")} for z in self.zones]}

    def aggregated_machine_types(self, query, body):
        return 200, {"kind": "compute#machineTypeAggregatedList", "items": {f"zones/{z}": {"machineTypes": [
            {"kind": "compute#machineType", "name": t["name"], "guestCpus": t["cpus"], "memoryMb": t["mb"],
             "zone": z, "isSharedCpu": t["name"] in ("e2-micro", "e2-small", "e2-medium")}
            for t in self.catalog["machine_types"]]} for z in self.zones}}

    def get_firewall(self, query, body, name):
        return 200, public(self.one(self.firewalls, name, f"The resource 'firewalls/{name}' was not found"))

    def insert_firewall(self, query, body):
        if body["name"] in self.firewalls:
            return self.error(409, "alreadyExists", f"The resource 'firewalls/{body['name']}' already exists")
        self.firewalls[body["name"]] = {**body, "kind": "compute#firewall", "id": str(next(self.ids))}
        return self._operation("insert", f"global/firewalls/{body['name']}", None, query)

    def get_operation(self, query, body, scope, name):
        """DONE from the first read on (the work is done when the fake answers)."""
        operation = self.one(self.operations, name, f"The resource 'operations/{name}' was not found")
        operation.update(status="DONE", progress=100, endTime=now())
        return 200, public(operation)

    def insert_instance(self, query, body, zone):
        if query.get("requestId") in self.request_ids:
            return 200, public(self.request_ids[query["requestId"]])
        if zone not in self.zones:
            return self.error(400, "invalid", f"Invalid value for field 'zone': '{zone}'")
        if f"{zone}/{body['name']}" in self.servers:
            return self.error(409, "alreadyExists", f"The resource 'instances/{body['name']}' already exists")
        kind = body["machineType"].rsplit("/", 1)[-1]
        if kind not in {t["name"] for t in self.catalog["machine_types"]}:
            return self.error(400, "invalid", f"Invalid value for field 'resource.machineType': '{kind}'")
        image = body["disks"][0]["initializeParams"]["sourceImage"]
        if image not in self.catalog["images"]:
            return self.error(404, "notFound", f"The resource '{image}' was not found")
        if self.insert_error:               # GCE accepts the insert; its operation fails later
            status, operation = self._operation("insert", f"zones/{zone}/instances/{body['name']}", zone, query)
            self.operations[operation["name"]].update(error={"errors": [
                {"code": "QUOTA_EXCEEDED", "message": self.insert_error}]}, httpErrorStatusCode=403)
            self.insert_error = None
            return status, operation
        self.servers[f"{zone}/{body['name']}"] = {
            **body, "kind": "compute#instance", "id": str(next(self.ids)), "status": "PROVISIONING",
            "zone": self._link(f"zones/{zone}"), "machineType": self._link(f"zones/{zone}/machineTypes/{kind}"),
            "creationTimestamp": now(), "selfLink": self._link(f"zones/{zone}/instances/{body['name']}"),
            "_polls": 0, "_ip": "127.0.0.1"}
        return self._operation("insert", f"zones/{zone}/instances/{body['name']}", zone, query)

    def _view(self, instance: dict) -> dict:
        self.tick(instance)
        if instance["status"] == "PROVISIONING" and self.booted(instance):
            instance["status"] = "RUNNING"
            for interface in instance["networkInterfaces"]:
                for config in interface.get("accessConfigs") or []:
                    config["natIP"] = instance["_ip"]
        return public(instance)

    def get_instance(self, query, body, zone, name):
        return 200, self._view(self._instance(zone, name))

    def aggregated_instances(self, query, body):
        by_zone: dict[str, list] = {}
        for key, instance in self.servers.items():
            by_zone.setdefault(f"zones/{key.split('/')[0]}", []).append(self._view(instance))
        return 200, {"kind": "compute#instanceAggregatedList",
                     "items": {z: {"instances": found} for z, found in by_zone.items()}}

    def delete_instance(self, query, body, zone, name):
        self._instance(zone, name)
        del self.servers[f"{zone}/{name}"]
        return self._operation("delete", f"zones/{zone}/instances/{name}", zone, query)

    def reset_instance(self, query, body, zone, name):
        self._instance(zone, name)
        self.reboots.append(f"{zone}/{name}")
        return self._operation("reset", f"zones/{zone}/instances/{name}", zone, query)
