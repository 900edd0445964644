"""Providers end to end through the nself CLI against stateful fakes over real HTTP, every
request checked against the provider's OpenAPI description (specs/)."""
import json
import os
import re
import stat
import subprocess
import sys
import time

import pytest
import yaml

from conftest import SPECS, answering
from nself.providers.base import SERVERS

pytest_plugins = ["cloud_project"]     # the project, key and inventory fixtures

CASES = [  # provider, region, the medium size its size list gives by vCPU/RAM, a size id it lacks
    ("hetzner", "fsn1", "cx22"),
    ("digitalocean", "fra1", "s-2vcpu-4gb"),
    ("linode", "eu-central", "g6-standard-2"),
    ("vultr", "fra", "vc2-2c-4gb"),
    ("exoscale", "ch-gva-2", "standard.medium"),
    ("upcloud", "fi-hel2", "2xCPU-4GB"),
    ("scaleway", "fr-par-1", "DEV1-M"),
    ("ionos", "de/fra", "2c-4gb"),
]
CREATE = r"/(servers|droplets|instances|instance|server)$"     # the create endpoint of each


@pytest.mark.parametrize("provider,region,medium", CASES)
def test_provision_status_exec_reboot_destroy(nself, project, inventory, cloud_fake, ssh_hosts, provider, region,
                                              medium):
    fake = cloud_fake(provider, SPECS)
    host, = ssh_hosts(1)          # the fake reports 127.0.0.1; this sshd plays the new server
    env = fake.env()
    r = nself(["cloud.provision", provider, "--name", "web1", "--region", region, "--size", "medium",
               "--ssh-key", f"{host.user_key}.pub", "--port", str(host.port), "--roles", "web",
               "--trust-new", "--yes", "--json"], cwd=project, env=env)
    assert r.code == 0, r.err
    result = r.json()
    assert (result["size"], result["ipv4"], result["region"]) == (medium, "127.0.0.1", region)
    assert result["host_key"].startswith("ssh-ed25519 SHA256:")
    entry = inventory()["web1"]
    assert entry["provider"] == provider and entry["id"] == result["id"] and entry["size"] == medium
    assert entry["key"] == str(host.user_key) and entry["roles"] == ["web"]
    assert len(fake.calls("POST", CREATE)) == 1

    rows = nself(["cloud.servers.list", "--refresh", "--json"], cwd=project, env=env).json()
    assert [(row["name"], row["state"]) for row in rows] == [("web1", "running")]
    r = nself(["cloud.servers.exec", "--json", "--", "echo", "hello"], cwd=project, env=env)
    assert r.code == 0 and r.json()[0]["stdout"] == "hello\n"

    bare_id = result["id"].split("/")[-1]                  # Exoscale and Scaleway ids carry their zone

    def actions():
        return [c for c in fake.requests if c["method"] in ("POST", "PUT") and bare_id in c["path"]
                and re.search(r"(action|actions|reboot|restart)$", c["path"])]
    before = len(actions())                                # Scaleway's power-on is an action too
    r = nself(["cloud.servers.reboot", "web1", "--yes", "--json"], cwd=project, env=env)
    assert r.code == 0, r.err
    assert r.json()["via"] == f"{provider} API"
    assert len(actions()) == before + 1

    r = nself(["cloud.servers.destroy", "web1", "--yes"], cwd=project, env=env)
    assert r.code == 0, r.err
    assert fake.servers == {} and inventory() == {}
    assert fake.violations == []


@pytest.mark.parametrize("provider,region,medium", CASES)
def test_dry_run_changes_nothing(nself, project, cloud_fake, key, provider, region, medium):
    fake = cloud_fake(provider, SPECS)
    r = nself(["cloud.provision", provider, "--name", "web1", "--region", region, "--size", "large",
               "--ssh-key", str(key), "--dry-run", "--json"], cwd=project, env=fake.env())
    assert r.code == 0, r.err
    step, = r.json()["plan"]["steps"]
    assert step["kind"] == "http" and step["method"] == "POST" and step["url"] == fake.env()[
        f"NSELF_{provider.upper()}_API_URL"].rstrip("/").replace("{zone}", region)
    body = step["body"]
    assert 4 <= body["vcpu"] <= 8 and 8 <= body["ram_gb"] <= 16 and body["region"] == region
    assert body["ssh_key"].count(":") == 15 and "ssh-" not in json.dumps(step)    # the key by fingerprint
    assert not fake.calls("POST", ".") and not (project / ".nself").exists()
    assert fake.violations == []


def test_a_dry_run_without_credentials_is_planned_from_the_catalog(nself, project, key, monkeypatch):
    """No token anywhere: the dry run still shows the create (size from the dated catalog) and says
    what it could not check; the real run is refused as before."""
    monkeypatch.delenv("HCLOUD_TOKEN", raising=False)
    monkeypatch.delenv("NSELF_HETZNER_TOKEN", raising=False)
    argv = ["cloud.provision", "hetzner", "--name", "web1", "--region", "fsn1", "--size", "small",
            "--ssh-key", str(key)]
    r = nself([*argv, "--dry-run", "--json"], cwd=project)
    assert r.code == 0, r.err
    step, = r.json()["plan"]["steps"]
    assert step["body"]["size"] == "cpx11" and step["body"]["region"] == "fsn1"
    assert "planned offline from nself's price catalog" in r.err and "not checked" in r.err
    assert nself([*argv, "--dry-run", "--size", "huge-9"], cwd=project).code == 2    # the catalog's ids
    refused = nself([*argv, "--yes"], cwd=project)
    assert refused.code == 3 and "no credentials for Hetzner Cloud" in refused.err
    assert not (project / ".nself").exists()


def test_rate_limit_and_server_errors_are_retried(nself, project, cloud_fake, key):
    fake = cloud_fake("hetzner", SPECS)
    fake.fail("GET", "^/server_types$", 503, times=2)
    fake.fail("POST", "^/servers$", 429, retry_after=2)
    r = nself(["cloud.provision", "hetzner", "--name", "web1", "--region", "fsn1", "--ssh-key", str(key),
               "--yes", "--json"], cwd=project, env=fake.env())
    assert r.code == 0, r.err
    posts = fake.calls("POST", "^/v1/servers$")
    assert len(posts) == 2 and len(fake.servers) == 1
    assert posts[1]["at"] - posts[0]["at"] >= 1.9                   # Retry-After: 2 was honoured
    assert len(fake.calls("GET", "^/v1/server_types$")) >= 3
    assert fake.violations == []


@pytest.mark.parametrize("provider,region,medium", CASES)
def test_a_create_that_went_through_is_not_repeated(nself, project, inventory, cloud_fake, key, provider, region,
                                                    medium):
    fake = cloud_fake(provider, SPECS)
    fake.fail("POST", CREATE, 500, after=True)     # made, but the answer is a 500
    r = nself(["cloud.provision", provider, "--name", "web1", "--region", region, "--ssh-key", str(key),
               "--yes", "--json"], cwd=project, env=fake.env())
    assert r.code == 0, r.err
    assert len(fake.servers) == 1 and len(fake.calls("POST", CREATE)) == 1
    assert inventory()["web1"]["id"] == r.json()["id"]
    assert fake.violations == []


def test_refused_credentials_exit_8_and_never_show_the_token(nself, project, cloud_fake, key):
    fake = cloud_fake("hetzner", SPECS)
    env = {**fake.env(), "HCLOUD_TOKEN": "wrong-secret-token-4242"}
    r = nself(["cloud.provision", "hetzner", "--name", "web1", "--region", "fsn1", "--ssh-key", str(key),
               "--yes", "--json", "--debug"], cwd=project, env=env)
    assert r.code == 8
    error = r.json()   # --json: the refusal is the one document on stdout
    assert "401" in error["error"] and "cloud.providers.init hetzner" in error["hint"]
    assert "wrong-secret-token-4242" not in r.out + r.err
    assert fake.calls("GET", ".")[0]["authorization"] == "Bearer wrong-secret-token-4242"
    assert not (project / ".nself").exists()


def test_provider_errors_come_in_its_words(nself, project, inventory, cloud_fake, key):
    fake = cloud_fake("hetzner", SPECS)
    args = ["--region", "fsn1", "--ssh-key", str(key), "--yes"]
    other = project.parent / "other"
    other.mkdir()
    (other / "compose.yaml").write_text("services: {web: {image: 'nginx:1.27'}}\n")
    assert nself(["cloud.provision", "hetzner", "--name", "web1", *args], cwd=other, env=fake.env()).code == 0
    r = nself(["cloud.provision", "hetzner", "--name", "web1", *args], cwd=project, env=fake.env())
    assert r.code == 8 and "409 uniqueness_error: server name is already used" in r.err
    assert inventory() == {}
    r = nself(["cloud.provision", "hetzner", "--name", "web2", "--region", "mars1", *args[2:]], cwd=project,
              env=fake.env())
    assert r.code == 2 and "no region 'mars1'" in r.err and "fsn1" in r.err
    big = project / "big.yml"
    big.write_text("#cloud-config\n" + "#" * 40_000)
    r = nself(["cloud.provision", "hetzner", "--name", "web2", *args, "--user-data", str(big)], cwd=project,
              env=fake.env())
    assert r.code == 2 and "at most 32768" in r.err
    assert len(fake.servers) == 1 and fake.violations == []


def test_names_the_provider_refuses_are_caught_before_anything_is_made(nself, project, cloud_fake, key):
    fake = cloud_fake("linode", SPECS)
    r = nself(["cloud.provision", "linode", "--name", "9web", "--region", "eu-central", "--ssh-key", str(key),
               "--yes"], cwd=project, env=fake.env())
    assert r.code == 2 and "starting with a letter" in r.err
    assert not fake.calls("POST", ".") and fake.violations == []


def test_ambiguous_names_at_the_provider_list_the_ids(nself, project, cloud_fake, key):
    fake = cloud_fake("digitalocean", SPECS)    # DigitalOcean allows two droplets with one name
    for folder in ("a", "b"):
        root = project.parent / folder
        root.mkdir()
        (root / "compose.yaml").write_text("services: {web: {image: 'nginx:1.27'}}\n")
        assert nself(["cloud.provision", "digitalocean", "--name", "web1", "--region", "fra1", "--ssh-key",
                      str(key), "--yes"], cwd=root, env=fake.env()).code == 0
    r = nself(["cloud.servers.destroy", "web1", "--provider", "digitalocean", "--yes"], cwd=project, env=fake.env())
    assert r.code == 2 and "2 DigitalOcean servers are named 'web1'" in r.err
    assert all(droplet_id in r.err for droplet_id in fake.servers)
    first = sorted(fake.servers)[0]
    r = nself(["cloud.servers.destroy", first, "--provider", "digitalocean", "--yes"], cwd=project, env=fake.env())
    assert r.code == 0, r.err
    assert len(fake.servers) == 1 and first not in fake.servers and fake.violations == []


def test_pagination_reads_every_page(nself, project, cloud_fake):
    fake = cloud_fake("hetzner", SPECS)       # two items per page
    rows = nself(["cloud.providers.sizes", "hetzner", "--json"], cwd=project, env=fake.env()).json()
    assert sorted(r["id"] for r in rows) == ["cpx11", "cx22", "cx32", "cx42", "cx52"]   # cx11 is deprecated
    assert [c["query"].get("page", "1") for c in fake.calls("GET", "^/v1/server_types$")] == ["1", "2", "3"]
    assert all(r["currency"] == "EUR" and r["monthly"] > 0 for r in rows)


def test_unsupported_providers_say_so(nself, project):
    r = nself(["cloud.provision", "ovh", "--name", "web1", "--region", "gra"], cwd=project)
    assert r.code == 8
    assert "cannot provision servers through nself yet" in r.err and "cloud.servers.add" in r.err
    assert "hetzner" in r.err
    r = nself(["cloud.provision", "nimbus", "--name", "web1", "--region", "x"], cwd=project)
    assert r.code == 8 and "unknown provider 'nimbus'" in r.err
    r = nself(["cloud.k8s.create", "contabo", "--name", "k", "--region", "EU"], cwd=project)
    assert r.code == 8 and "has no managed Kubernetes" in r.err and "k8s.k3s.install" in r.err
    assert "digitalocean" in r.err
    r = nself(["cloud.k8s.create", "hetzner", "--name", "k", "--region", "fsn1"], cwd=project)
    assert r.code == 8 and "has no managed Kubernetes" in r.err
    rows = nself(["cloud.providers.list", "--json"], cwd=project,
                 env={"UPCLOUD_USERNAME": "ops", "UPCLOUD_PASSWORD": "pw-123"}).json()   # the alternative set
    assert {r["provider"]: r["credentials"] for r in rows}["upcloud"] == "environment"
    assert len(rows) == 26
    assert {r["provider"] for r in rows if r["implemented"]} == {"hetzner", "digitalocean", "linode", "vultr",
                                                                      "exoscale", "upcloud", "scaleway",
                                                                      "ionos", "aws", "gcp"}
    can = {r["provider"]: r["capabilities"] for r in rows}
    assert can["hetzner"] == sorted(SERVERS) and can["linode"] == sorted(SERVERS | {"k8s"})
    assert can["aws"] == sorted(SERVERS | {"k8s", "k8s-token"}) and can["gcp"] == sorted(SERVERS)
    assert can["azure"] == []
    assert {r["provider"]: r["managed_k8s"] for r in rows}["aws"] == "EKS"
    table = nself(["cloud.providers.list"], cwd=project).out
    assert re.search(r"aws .*EKS\s*$", table, re.M) and re.search(r"gcp .*GKE \(not built\)", table)
    assert re.search(r"linode .*LKE\s*$", table, re.M)


def test_credentials_file_is_private_and_checked_first(nself, project, cloud_fake, tmp_path, monkeypatch):
    fake = cloud_fake("hetzner", SPECS)
    url = {"NSELF_HETZNER_API_URL": fake.url}
    monkeypatch.delenv("HCLOUD_TOKEN", raising=False)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("not-the-token\n"))
    r = nself(["cloud.providers.init", "hetzner"], cwd=project, env=url)
    assert r.code == 8 and "not-the-token" not in r.out + r.err
    path = tmp_path / "config/nself/credentials.yml"
    assert not path.exists()                                       # refused: nothing saved
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(fake.token + "\n"))
    r = nself(["cloud.providers.init", "hetzner", "--json"], cwd=project, env=url)
    assert r.code == 0, r.err
    assert fake.token not in r.out + r.err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text()) == {"hetzner": {"token": fake.token}}
    rows = nself(["cloud.providers.status", "--json"], cwd=project, env=url).json()
    assert {r["provider"]: r["ok"] for r in rows} == {"hetzner": True, "digitalocean": False, "linode": False,
                                                      "vultr": False, "exoscale": False, "upcloud": False,
                                                      "scaleway": False, "ionos": False, "aws": False, "gcp": False}
    os.chmod(path, 0o644)
    r = nself(["cloud.providers.sizes", "hetzner"], cwd=project, env=url)
    assert r.code == 7 and "chmod 600" in r.err
    os.chmod(path, 0o600)
    assert nself(["cloud.providers.remove", "hetzner"], cwd=project).code == 0
    assert yaml.safe_load(path.read_text()) == {}


def test_costs_compare_from_the_catalog(nself, project):
    rows = nself(["cloud.costs.compare", "--json"], cwd=project).json()
    assert len(rows) == 26 and len({r["provider"] for r in rows}) == 26
    priced = [r for r in rows if "usd" in r]
    assert len(priced) >= 6 and [r["usd"] for r in priced] == sorted(r["usd"] for r in priced)
    assert all(r["source"].startswith("catalog 20") and 2 <= r["vcpu"] <= 4 and 4 <= r["ram_gb"] <= 8
               for r in priced)
    assert all(r["error"] for r in rows if "usd" not in r)
    tiny = nself(["cloud.costs.compare", "--size", "tiny", "--json"], cwd=project).json()
    assert {r["provider"]: r.get("id") for r in tiny}["digitalocean"] == "s-1vcpu-512mb-10gb"
    r = nself(["cloud.costs.compare", "--size", "huge"], cwd=project)
    assert r.code == 2 and "tiny, small, medium, large, xlarge" in r.err


def test_costs_compare_live_asks_providers_with_credentials(nself, project, cloud_fake):
    fake = cloud_fake("hetzner", SPECS)
    rows = nself(["cloud.costs.compare", "--live", "--json"], cwd=project, env=fake.env()).json()
    by = {r["provider"]: r for r in rows}
    assert by["hetzner"]["source"] == "live" and by["hetzner"]["monthly"] == 4.51   # the fake's price
    assert by["digitalocean"]["source"].startswith("catalog")                       # no credentials
    assert fake.violations == []


def test_costs_estimate_sums_the_inventory(nself, project):
    (project / ".nself").mkdir()
    (project / ".nself/servers.yml").write_text(yaml.safe_dump({"servers": {
        "a": {"host": "127.0.0.1", "provider": "digitalocean", "id": "1", "size": "s-2vcpu-4gb"},
        "b": {"host": "127.0.0.1", "provider": "hetzner", "id": "2", "size": "cx22"},
        "c": {"host": "127.0.0.1"}}}))
    result = nself(["cloud.costs.estimate", "--json"], cwd=project).json()
    assert [r["server"] for r in result["servers"]] == ["a", "b"]
    assert result["total_usd"] == pytest.approx(24 + 3.79 * 1.08, abs=0.01)


def test_the_contract_check_can_fail():
    from nself.testing.openapi import Contract

    contract = Contract(SPECS / "hetzner/hcloud.json", "https://api.hetzner.cloud", "/v1")
    auth = {"Authorization": "Bearer x"}
    good = {"name": "web1", "server_type": "cx22", "image": "ubuntu-24.04", "location": "fsn1"}
    assert contract.check_request("POST", "/v1/servers", {}, good, auth) == []
    assert contract.check_request("POST", "/v1/servers", {}, {**good, "size": "x"}, auth)
    assert contract.check_request("POST", "/v1/servers", {}, {"name": "web1"}, auth)      # required fields
    assert contract.check_request("GET", "/v1/servers", {"perpage": "5"}, None, auth)
    assert contract.check_request("GET", "/v1/servers", {}, None, {})                      # no token
    assert contract.check_request("PATCH", "/v1/nowhere", {}, None, auth)
    bad_id = contract.check_request("GET", "/v1/servers/abc", {}, None, auth)          # id must be an integer
    assert len(bad_id) == 1 and "integer" in bad_id[0] and "abc" in bad_id[0]
    assert contract.check_request("GET", "/v1/servers/12", {}, None, auth) == []


@pytest.mark.parametrize("method,url,body", [
    ("GET", "https://api-ch-gva-2.exoscale.com/v2/zone", b""),
    ("POST", "https://api-de-fra-1.exoscale.com/v2/instance", b'{"name": "web1", "disk-size": 50}'),
    ("GET", "https://api-ch-gva-2.exoscale.com/v2/template?visibility=public&family=ubuntu", b""),
    ("PUT", "https://api-ch-gva-2.exoscale.com/v2/instance/3fd91e25-9f6f-4e75-9b39-5671b95d34b5:reboot", b""),
])
def test_exoscale_signatures_match_exoscales_own_signer(method, url, body):
    import requests
    from exoscale_auth import ExoscaleV2Auth

    from nself.providers.signers import Exo2Signer

    request = requests.Request(method, url).prepare()
    request.body = body or None
    ExoscaleV2Auth("EXOkey", "secret-value")._sign_request(request, 1_900_000_000)
    assert Exo2Signer("EXOkey", "secret-value").header(method, url, body, 1_900_000_000) == \
        request.headers["Authorization"]


def test_a_wrong_exoscale_secret_is_refused(nself, project, cloud_fake):
    fake = cloud_fake("exoscale", SPECS)
    r = nself(["cloud.providers.sizes", "exoscale"], cwd=project,
              env={**fake.env(), "EXOSCALE_API_SECRET": "not-the-secret-777"})
    assert r.code == 8 and "401" in r.err and "not-the-secret-777" not in r.out + r.err
    assert nself(["cloud.providers.sizes", "exoscale"], cwd=project, env=fake.env()).code == 0


def test_upcloud_fake_answers_what_upclouds_own_sdk_understands(nself, project, cloud_fake, key):
    from upcloud_api import CloudManager, Server, Storage, login_user_block

    fake = cloud_fake("upcloud", SPECS)
    sdk = CloudManager(token=fake.token)
    sdk.api.api_root = fake.url
    assert "fi-hel2" in {z["id"] for z in sdk.get_zones()["zones"]["zone"]}
    assert "2xCPU-4GB" in {p["name"] for p in sdk.get_server_plans()["plans"]["plan"]}
    r = nself(["cloud.provision", "upcloud", "--name", "web1", "--region", "fi-hel2", "--ssh-key", str(key),
               "--yes", "--json"], cwd=project, env=fake.env())
    assert r.code == 0, r.err
    server = sdk.get_server(r.json()["id"])
    assert (server.title, server.zone, server.state) == ("web1", "fi-hel2", "started")
    # The SDK's own create body must pass the fake's field check, as it passes the real API.
    made = sdk.create_server(Server(plan="1xCPU-1GB", hostname="sdk.example.com", zone="de-fra1", title="sdk",
                                    storage_devices=[Storage(os="01000000-0000-4000-8000-000030240200", size=25)],
                                    login_user=login_user_block("root", [open(f"{key}.pub").read()], False)))
    assert made.uuid in fake.servers and fake.violations == []
    assert len(sdk.get_servers()) == 2


def test_ionos_datacenter_and_lan_are_made_once_and_reused(nself, project, cloud_fake, key):
    fake = cloud_fake("ionos", SPECS)
    for name in ("web1", "web2"):
        r = nself(["cloud.provision", "ionos", "--name", name, "--region", "de/fra", "--ssh-key", str(key),
                   "--yes"], cwd=project, env=fake.env())
        assert r.code == 0, r.err
    assert len(fake.calls("POST", r"/datacenters$")) == 1 and len(fake.calls("POST", r"/lans$")) == 1
    created = fake.calls("POST", r"/servers$")
    assert [c["body"]["entities"]["nics"]["items"][0]["properties"]["lan"] for c in created] == [1, 1]
    assert len(fake.servers) == 2 and fake.violations == []


@pytest.mark.parametrize("provider,region,small,newest,size_key,create_path", [
    ("digitalocean", "fra1", "s-1vcpu-1gb", "1.31.1-do.4", "size", "/kubernetes/clusters$"),
    ("linode", "eu-central", "g6-nanode-1", "1.31", "type", "/lke/clusters$"),
    ("vultr", "fra", "vc2-1c-1gb", "v1.31.2+1", "plan", "/kubernetes/clusters$"),
    ("exoscale", "ch-gva-2", "standard.tiny", "1.31.2", "instance-type", "/nodepool$"),
    ("ionos", "de/fra", "1c-1gb", "1.31.2", "coresCount", "/nodepools$"),
    ("scaleway", "fr-par-1", "STARDUST1-S", "1.31.2", "node_type", "/k8s/v1/regions/fr-par/clusters$"),
    ("upcloud", "fi-hel2", "1xCPU-1GB", "1.31", "plan", "/kubernetes$"),
])
def test_managed_kubernetes_create_gives_a_working_context(nself, project, cloud_fake, kube_api, tmp_path, provider,
                                                           region, small, newest, size_key, create_path):
    """The cluster's kubeconfig points at a real test API server: after create, nself's own
    k8s tasks work through the new context."""
    fake = cloud_fake(provider, SPECS)
    fake.kubeconfig = (tmp_path / "kube" / "config").read_text()        # kube_api's kubeconfig
    kubeconfig = tmp_path / "merged"
    env = {**fake.env(), "KUBECONFIG": str(kubeconfig)}
    r = nself(["cloud.k8s.create", provider, "--name", "prod", "--region", region, "--size", "small",
               "--nodes", "2", "--yes", "--json"], cwd=project, env=env)
    assert r.code == 0, r.err
    result = r.json()
    assert (result["status"], result["context"]) == ("running", f"{provider}-prod")
    posted = fake.calls("POST", create_path)[0]["body"]
    # SKS and IONOS: the node pool is its own call
    pools = posted.get("node_pools") or posted.get("pools") or posted.get("node_groups")
    pool = pools[0] if pools else posted.get("properties", posted)
    chosen = pool[size_key]["id"] if isinstance(pool[size_key], dict) else pool[size_key]
    expected = {"exoscale": getattr(fake, "_type_ids", {}).get(small.split(".")[-1]), "ionos": 1}.get(provider, small)
    assert chosen == expected
    assert next(pool[k] for k in ("count", "node_quantity", "size", "nodeCount") if k in pool) == 2
    assert yaml.safe_load(kubeconfig.read_text())["current-context"] == f"{provider}-prod"
    assert "test-token" not in r.out + r.err
    r = nself(["k8s.pods", "--json"], cwd=project, env=env)
    assert r.code == 0, r.err                                           # through the new context
    r = nself(["cloud.k8s.create", provider, "--name", "prod2", "--region", region, "--version", "1.2.3"],
              cwd=project, env=env)
    assert r.code == 2 and newest in r.err
    assert [c["name"] for c in nself(["cloud.k8s.list", provider, "--json"], cwd=project, env=env).json()] == ["prod"]
    assert nself(["cloud.k8s.delete", provider, "prod", "--yes"], cwd=project, env=env).code == 0
    assert fake.clusters == {} and fake.violations == []


def test_uks_network_is_one_upclouds_sdk_reads(nself, project, cloud_fake, tmp_path):
    from upcloud_api import CloudManager

    fake = cloud_fake("upcloud", SPECS)
    env = {**fake.env(), "KUBECONFIG": str(tmp_path / "kubeconfig")}
    for name in ("k8s-a", "k8s-b"):
        r = nself(["cloud.k8s.create", "upcloud", "--name", name, "--region", "fi-hel2", "--yes"], cwd=project,
                  env=env)
        assert r.code == 0, r.err
    assert len(fake.calls("POST", "^/1.3/network$")) == 1                 # one private network per zone
    sdk = CloudManager(token=fake.token)
    sdk.api.api_root = fake.url
    networks = sdk.get_networks(zone="fi-hel2")
    assert [(n.name, n.ip_networks[0].address) for n in networks] == [("nself-uks-fi-hel2", "172.16.1.0/24")]
    assert fake.violations == []


def test_a_server_that_never_answers_ssh_stays_in_the_inventory(nself, project, inventory, cloud_fake, key):
    import socket

    fake = cloud_fake("hetzner", SPECS)
    with socket.socket() as probe:                    # a closed loopback port: nothing answers there
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    r = nself(["cloud.provision", "hetzner", "--name", "web1", "--region", "fsn1", "--ssh-key", str(key),
               "--port", str(closed), "--trust-new", "--timeout", "4", "--yes"], cwd=project, env=fake.env())
    assert r.code == 10 and "does not answer SSH" in r.err
    entry = inventory()["web1"]                 # made and paid for: never forgotten
    assert entry["provider"] == "hetzner" and entry["id"] in {str(i) for i in fake.servers}
    assert entry["host"] == "127.0.0.1" and not (project / ".nself/known_hosts").exists()


def test_refresh_follows_new_addresses_and_reports_gone_servers(nself, project, inventory, cloud_fake, key):
    fake = cloud_fake("hetzner", SPECS)
    for name in ("web1", "web2"):
        assert nself(["cloud.provision", "hetzner", "--name", name, "--region", "fsn1", "--ssh-key", str(key),
                      "--yes"], cwd=project, env=fake.env()).code == 0
    ids = {n: e["id"] for n, e in inventory().items()}
    fake.servers[ids["web1"]]["public_net"]["ipv4"]["ip"] = "127.0.0.9"      # the provider moved it
    del fake.servers[ids["web2"]]                                              # destroyed elsewhere
    rows = nself(["cloud.servers.list", "--refresh", "--json"], cwd=project, env=fake.env()).json()
    assert {r["name"]: (r["host"], r["state"]) for r in rows} == {"web1": ("127.0.0.9", "running"),
                                                                   "web2": ("127.0.0.1", "gone")}
    assert inventory()["web1"]["host"] == "127.0.0.9" and fake.violations == []


@pytest.mark.parametrize("body", [b"null", b"[]", b"<html>maintenance</html>"])
def test_a_provider_answer_that_is_not_an_object_is_exit_8(nself, project, body):
    with answering(body) as url:
        r = nself(["cloud.providers.regions", "hetzner"], cwd=project,
                  env={"NSELF_HETZNER_API_URL": url, "HCLOUD_TOKEN": "t"})
    assert r.code == 8 and "not a JSON object" in r.err and "internal" not in r.err, r.err


def test_a_hanging_provider_ends_at_the_deadline(nself, project):
    with answering(b"{}", delay=30) as url:
        started = time.monotonic()
        r = nself(["cloud.providers.regions", "hetzner"], cwd=project,
                  env={"NSELF_HETZNER_API_URL": url, "HCLOUD_TOKEN": "t", "NSELF_API_DEADLINE": "2"})
        took = time.monotonic() - started
    assert r.code == 8 and took < 10, (took, r.err)


def test_a_contract_violation_fails_the_test_at_teardown(tmp_path):
    """The cloud_fake fixture itself: a request the spec forbids turns a passing test into an error."""
    (tmp_path / "test_inner.py").write_text(
        "from pathlib import Path\n\nimport requests\n"
        "pytest_plugins = ['nself.testing.plugin']\n\n"
        "def test_sends_a_bad_id(cloud_fake):\n"
        f"    fake = cloud_fake('hetzner', Path({str(SPECS)!r}))\n"
        "    r = requests.get(fake.url + '/servers/abc', headers={'Authorization': 'Bearer ' + fake.token},\n"
        "                     timeout=10)\n"
        "    assert r.status_code == 400\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 1, r.stdout
    assert "1 passed, 1 error" in r.stdout and "ERROR at teardown of test_sends_a_bad_id" in r.stdout
    assert "HetznerFake: GET /v1/servers/abc: ParameterValidationError" in r.stdout
