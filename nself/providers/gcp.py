"""Google Compute Engine (https://cloud.google.com/compute/docs/reference/rest/v1): REST/JSON at
compute.googleapis.com/compute/v1/projects/<project>, every write answered with an Operation that
nself polls until it is DONE (`zoneOperations.get`, `globalOperations.get`). Credentials are a service
account's JSON key: nself signs a JWT with its RSA key (RS256) and trades it at the key's
`token_uri` for an hour-long OAuth2 access token (RFC 7523, developers.google.com/identity/
protocols/oauth2/service-account), so neither gcloud nor google-auth is needed.

What a server needs: a firewall rule `nself-ssh` on the default network letting TCP 22, 80 and
443 in to instances tagged `nself` (made once); the SSH key in the instance's `ssh-keys`
metadata for the login user; Canonical's Ubuntu 24.04 image family; a one-to-one NAT for a
public IPv4. Inserts carry a `requestId`, which GCE deduplicates, so a create repeated after a
lost answer makes no second instance. Server ids are `<zone>/<name>`: instance names are unique
per zone and every call names the zone. Prices come from the dated catalog."""
from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from pathlib import Path

import requests

from nself.errors import Exit, NselfError, UsageError
from nself.providers import catalog
from nself.providers.base import SERVERS, CloudServer, Provider, ProvisionRequest, Region, Size
from nself.providers.http import ProviderError

SCOPE = "https://www.googleapis.com/auth/compute"
IMAGE = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64"
FIREWALL = "nself-ssh"
_FAMILIES = ("e2-",)                # general purpose, the sizes the catalog prices
_STATUS = {"PROVISIONING": "starting", "STAGING": "starting", "RUNNING": "running", "STOPPING": "stopped",
           "SUSPENDING": "stopped", "SUSPENDED": "stopped", "TERMINATED": "stopped", "REPAIRING": "unknown"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def assertion(key: dict, now: float) -> str:
    """The RS256-signed JWT a service account presents for a token (header with the key id;
    claims iss, scope, aud = the token URI, iat, exp an hour later)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    header = {"alg": "RS256", "typ": "JWT", "kid": key.get("private_key_id", "")}
    claims = {"iss": key["client_email"], "scope": SCOPE, "aud": key["token_uri"], "iat": int(now),
              "exp": int(now) + 3600}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    private = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
    return f"{signing_input}.{_b64(private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()))}"


def read_key(path: str) -> dict:
    """A service-account JSON key file, checked for the fields nself uses."""
    try:
        key = json.loads(Path(path).expanduser().read_text())
    except (OSError, ValueError) as exc:
        raise NselfError(f"cannot read the service-account key {path}: {type(exc).__name__}", code=Exit.CONFIG,
                         hint="GOOGLE_APPLICATION_CREDENTIALS names a JSON key from IAM → Service accounts → "
                              "Keys") from None
    missing = [f for f in ("client_email", "private_key", "token_uri", "project_id") if not key.get(f)]
    if key.get("type") != "service_account" or missing:
        raise NselfError(f"{path} is not a service-account key" + (f" (no {', '.join(missing)})" if missing else ""),
                         code=Exit.CONFIG, hint="create a JSON key for a service account with the Compute "
                                                "Instance Admin role")
    return key


class ServiceAccountAuth(requests.auth.AuthBase):
    """Bearer tokens minted from a service-account key, fetched when first needed and again a
    minute before they expire. The token request has its own deadline (`timeout`, seconds)."""

    def __init__(self, key_file: str, timeout: float = 30, clock=time.time):
        self.key_file = key_file
        self.timeout = timeout
        self.clock = clock
        self.token, self.expires = "", 0.0
        self.lock = threading.Lock()

    def access_token(self) -> str:
        with self.lock:
            if self.clock() < self.expires - 60:
                return self.token
            key = read_key(self.key_file)
            try:
                answer = requests.post(key["token_uri"], timeout=self.timeout, data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": assertion(key, self.clock())})
            except requests.RequestException as exc:
                raise ProviderError(f"gcp: no token from {key['token_uri']}: {type(exc).__name__}",
                                    hint="check your network") from None
            if answer.status_code != 200:
                raise ProviderError(f"gcp: the token endpoint refused the service-account key "
                                    f"({answer.status_code})", status=401,
                                    hint="the key may be deleted or disabled: create a new one, then "
                                         "nself cloud.providers.init gcp")
            body = answer.json()
            self.token, self.expires = body["access_token"], self.clock() + float(body.get("expires_in", 3600))
            return self.token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.access_token()}"
        return request


class Gcp(Provider):
    name = "gcp"
    title = "Google Compute Engine"
    base_url = "https://compute.googleapis.com/compute/v1"
    image = IMAGE
    ssh_user = "ubuntu"              # the user the ssh-keys entry names (GCE's guest agent makes it)
    id_pattern = r"[a-z]+-[a-z]+\d+-[a-z]/[a-z]([-a-z0-9]*[a-z0-9])?"
    name_rule = (r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", "1-63 lower-case letters, digits and hyphens, starting "
                                                       "with a letter (RFC 1035)")
    user_data_limit = 256 * 1024     # one metadata value (compute/docs/metadata/setting-custom-metadata)
    disk_gb = 10                     # the image's boot disk (pd-balanced, billed apart)
    operation_deadline = 600.0       # seconds an operation may take
    capabilities = SERVERS

    def __init__(self, api, project: str = ""):
        super().__init__(api)
        self.project = project

    @classmethod
    def configure(cls, api, values: dict[str, str]) -> Provider:
        return cls(api, read_key(values["key_file"])["project_id"])

    @staticmethod
    def auth(values: dict[str, str]):
        return ServiceAccountAuth(values["key_file"])

    @staticmethod
    def describe_error(body) -> str | None:
        error = body.get("error") if isinstance(body, dict) else None
        return error.get("message") if isinstance(error, dict) else None

    def _call(self, method: str, path: str, **kwargs):
        return self.api.request(method, f"/projects/{self.project}{path}", **kwargs)

    def _pages(self, path: str, key: str | None = None) -> list:
        """Every item of a list (or, with `key`, of an aggregated list: each scope's `key` list)."""
        found, token = [], None
        for _ in range(1000):
            page = self._call("GET", path, params={"maxResults": 500, **({"pageToken": token} if token else {})})
            if key:
                found += [i for scope in (page.get("items") or {}).values() for i in scope.get(key) or []]
            else:
                found += page.get("items") or []
            token = page.get("nextPageToken")
            if not token:
                return found
        raise UsageError(f"gcp: {path} did not end after 1000 pages")

    def _wait(self, operation: dict) -> dict:
        """Poll an Operation until it is DONE (soon at first, then every 5 s, within
        `operation_deadline`); its error, if any, becomes the failure of the request that
        started it. GET, not `wait`: `wait` may hold the connection for two minutes, longer
        than one request may take here."""
        scope = f"/zones/{operation['zone'].rsplit('/', 1)[-1]}" if operation.get("zone") else "/global"
        ends, pause = time.monotonic() + self.operation_deadline, 0.5
        while operation.get("status") != "DONE":
            if time.monotonic() > ends:
                raise ProviderError(f"gcp: operation {operation['name']} is still {operation.get('status')} after "
                                    f"{self.operation_deadline:.0f} s", hint="see the console's operations page")
            time.sleep(pause)
            pause = min(pause * 1.5, 5.0)
            operation = self._call("GET", f"{scope}/operations/{operation['name']}")
        errors = (operation.get("error") or {}).get("errors") or []
        if errors:
            raise ProviderError("gcp: " + "; ".join(e.get("message", e.get("code", "")) for e in errors),
                                status=operation.get("httpErrorStatusCode"))
        return operation

    def validate(self) -> str:
        return f"service account for project {self.project} ({len(self.list_regions())} zones)"

    def list_regions(self) -> list[Region]:
        return [Region(z["name"], z["name"], available=z.get("status") == "UP") for z in self._pages("/zones")]

    def list_sizes(self) -> list[Size]:
        prices = {s.id: s.monthly for s in catalog.sizes("gcp")}
        zones: dict[str, list[str]] = {}
        kinds: dict[str, dict] = {}
        for kind in self._pages("/aggregated/machineTypes", "machineTypes"):
            if kind["name"].startswith(_FAMILIES):
                kinds[kind["name"]] = kind
                zones.setdefault(kind["name"], []).append(kind["zone"].rsplit("/", 1)[-1])
        return [Size(n, int(k["guestCpus"]), int(k["memoryMb"]) / 1024, self.disk_gb, prices.get(n), "USD",
                     tuple(sorted(zones[n]))) for n, k in sorted(kinds.items())]

    def _firewall(self) -> None:
        """The rule that lets SSH, HTTP and HTTPS in to instances tagged `nself`, made once."""
        if self._call("GET", f"/global/firewalls/{FIREWALL}", ok=(404,)) is not None:
            return
        self._wait(self._call("POST", "/global/firewalls", params={"requestId": str(uuid.uuid4())}, idempotent=True,
                              json={"name": FIREWALL, "network": "global/networks/default", "direction": "INGRESS",
                                    "description": "SSH, HTTP and HTTPS to servers nself made",
                                    "allowed": [{"IPProtocol": "tcp", "ports": ["22", "80", "443"]}],
                                    "sourceRanges": ["0.0.0.0/0"], "targetTags": ["nself"]}))

    def create(self, request: ProvisionRequest) -> CloudServer:
        zone = request.region
        self._firewall()
        items = [{"key": "ssh-keys", "value": f"{self.ssh_user}:{request.ssh_public_key.strip()}"}]
        if request.user_data:
            items.append({"key": "user-data", "value": request.user_data})
        body = {"name": request.name, "machineType": f"zones/{zone}/machineTypes/{request.size}",
                "disks": [{"boot": True, "autoDelete": True, "initializeParams": {"sourceImage": request.image}}],
                "networkInterfaces": [{"network": "global/networks/default", "accessConfigs": [
                    {"type": "ONE_TO_ONE_NAT", "name": "External NAT"}]}],
                "metadata": {"items": items}, "tags": {"items": ["nself"]},
                "labels": {"managed-by": "nself", "nself-request": request.request_id}}
        # requestId must be a UUID; GCE answers a repeat with the first insert's operation
        request_uuid = str(uuid.UUID(hex=(request.request_id or uuid.uuid4().hex).ljust(32, "0")[:32]))
        self._wait(self._call("POST", f"/zones/{zone}/instances", params={"requestId": request_uuid}, json=body,
                              idempotent=True))
        return self.get(f"{zone}/{request.name}") or CloudServer(f"{zone}/{request.name}", request.name, "starting",
                                                                 region=zone, size=request.size)

    def get(self, server_id: str) -> CloudServer | None:
        zone, name = server_id.split("/", 1)
        found = self._call("GET", f"/zones/{zone}/instances/{name}", ok=(404,))
        return None if found is None else self._server(found)

    def find(self, name: str) -> list[CloudServer]:
        return [s for s in self.list() if s.name == name]

    def list(self) -> list[CloudServer]:
        return [self._server(i) for i in self._pages("/aggregated/instances", "instances")]

    def destroy(self, server_id: str) -> None:
        zone, name = server_id.split("/", 1)
        operation = self._call("DELETE", f"/zones/{zone}/instances/{name}", ok=(404,))
        if operation is not None:
            self._wait(operation)

    def reboot(self, server_id: str) -> None:
        """A reset: GCE has no soft reboot in its API (a hard reset, like pressing the button)."""
        zone, name = server_id.split("/", 1)
        self._wait(self._call("POST", f"/zones/{zone}/instances/{name}/reset", params={"requestId": str(uuid.uuid4())},
                              idempotent=True))

    @staticmethod
    def _server(data: dict) -> CloudServer:
        zone = data["zone"].rsplit("/", 1)[-1]
        nat = [a.get("natIP") for n in data.get("networkInterfaces") or [] for a in n.get("accessConfigs") or []]
        return CloudServer(f"{zone}/{data['name']}", data["name"], _STATUS.get(data.get("status"), "unknown"),
                           next((ip for ip in nat if ip), None), None, zone,
                           data.get("machineType", "").rsplit("/", 1)[-1], data.get("creationTimestamp"),
                           data.get("labels") or {})


DRIVER = Gcp
