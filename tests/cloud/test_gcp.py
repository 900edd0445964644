"""Google Compute Engine end to end through the nself CLI against the GCE fake over real HTTP:
tokens minted from a service-account key (the fake verifies the RS256 JWT), every request and
answer checked against the Compute v1 Discovery document."""
import json
import time

from nself.providers import gcp

from cloud_project import provision_with_ssh

pytest_plugins = ["cloud_project"]     # the project, key and inventory fixtures


def test_provision_exec_list_reboot_destroy(nself, project, inventory, cloud_fake, ssh_hosts, tmp_path):
    fake = cloud_fake("gcp", None)
    host, = ssh_hosts(1)           # the fake reports 127.0.0.1; this sshd plays the instance
    env = fake.env()
    r = provision_with_ssh(nself, project, fake, host, tmp_path, "gcp", "europe-west1-b")
    assert r.code == 0, r.err
    result = r.json()
    assert (result["id"], result["size"], result["monthly"], result["ipv4"]) == \
        ("europe-west1-b/web1", "e2-medium", 24.46, "127.0.0.1")
    assert result["host_key"].startswith("ssh-ed25519 SHA256:")
    assert inventory()["web1"]["provider"] == "gcp" and inventory()["web1"]["region"] == "europe-west1-b"
    assert len(fake.calls("POST", "^/token$")) == 1           # one token for the run, reused for every call

    instance = fake.servers["europe-west1-b/web1"]
    metadata = {i["key"]: i["value"] for i in instance["metadata"]["items"]}
    key = (host.user_key.parent / f"{host.user_key.name}.pub").read_text().strip()
    assert metadata == {"ssh-keys": f"ubuntu:{key}", "user-data": (tmp_path / "init.yaml").read_text()}
    assert instance["tags"] == {"items": ["nself"]} and instance["labels"]["managed-by"] == "nself"
    rule = fake.firewalls["nself-ssh"]
    assert rule["allowed"] == [{"IPProtocol": "tcp", "ports": ["22", "80", "443"]}] and rule["targetTags"] == ["nself"]
    polled = {c["path"].rsplit("/", 1)[-1] for c in fake.calls("GET", "/operations/")}
    assert polled == set(fake.operations)                     # the firewall's and the insert's, until DONE

    rows = nself(["cloud.servers.list", "--refresh", "--json"], cwd=project, env=env).json()
    assert [(row["name"], row["state"]) for row in rows] == [("web1", "running")]
    r = nself(["cloud.servers.exec", "--json", "--", "echo", "hello"], cwd=project, env=env)
    assert r.code == 0 and r.json()[0]["stdout"] == "hello\n"
    r = nself(["cloud.servers.reboot", "web1", "--yes", "--json"], cwd=project, env=env)
    assert r.code == 0, r.err
    assert r.json()["via"] == "gcp API" and fake.reboots == ["europe-west1-b/web1"]
    r = nself(["cloud.servers.destroy", "web1", "--yes"], cwd=project, env=env)
    assert r.code == 0, r.err
    assert fake.servers == {} and inventory() == {}
    assert fake.violations == []


def test_a_create_answered_500_after_it_happened_makes_one_server(nself, project, inventory, cloud_fake, key):
    fake = cloud_fake("gcp", None)
    fake.fail("POST", "/instances$", 500, after=True)
    r = nself(["cloud.provision", "gcp", "--name", "web1", "--region", "us-central1-a", "--ssh-key", str(key),
               "--yes", "--json"], cwd=project, env=fake.env())
    assert r.code == 0, r.err
    posts = fake.calls("POST", "/instances$")
    assert len(posts) == 2 and len(fake.servers) == 1                 # repeated with the same requestId
    assert posts[0]["query"]["requestId"] == posts[1]["query"]["requestId"]
    assert inventory()["web1"]["id"] == "us-central1-a/web1"
    assert fake.violations == []


def test_an_operation_that_fails_is_the_commands_error(nself, project, inventory, cloud_fake, key):
    fake = cloud_fake("gcp", None)
    fake.insert_error = "Quota 'CPUS' exceeded.  Limit: 8.0 in region us-central1."
    r = nself(["cloud.provision", "gcp", "--name", "web1", "--region", "us-central1-a", "--ssh-key", str(key),
               "--yes"], cwd=project, env=fake.env())
    assert r.code == 8 and "Quota 'CPUS' exceeded" in r.err
    assert fake.servers == {} and inventory() == {}
    assert fake.violations == []


def test_throttling_is_retried(nself, project, cloud_fake, key):
    fake = cloud_fake("gcp", None)
    fake.fail("GET", "/aggregated/machineTypes$", 503, times=2)
    fake.fail("POST", "/instances$", 429, retry_after=1)
    r = nself(["cloud.provision", "gcp", "--name", "web1", "--region", "asia-south1-c", "--ssh-key", str(key),
               "--yes", "--json"], cwd=project, env=fake.env())
    assert r.code == 0, r.err
    first, second = fake.calls("POST", "/instances$")
    assert second["at"] - first["at"] >= 0.9 and len(fake.servers) == 1
    assert fake.violations == []


def test_a_key_the_token_endpoint_refuses_exits_8_and_shows_no_secret(nself, project, cloud_fake, key, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    fake = cloud_fake("gcp", None)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**fake.key, "private_key": other}))
    r = nself(["cloud.provision", "gcp", "--name", "web1", "--region", "us-central1-a", "--ssh-key", str(key),
               "--yes", "--json", "--debug"], cwd=project,
              env={**fake.env(), "GOOGLE_APPLICATION_CREDENTIALS": str(wrong)})
    assert r.code == 8 and "refused the service-account key" in r.json()["error"]
    assert other.splitlines()[1] not in r.out + r.err and not fake.issued
    assert not (project / ".nself").exists()
    r = nself(["cloud.providers.regions", "gcp"], cwd=project,
              env={**fake.env(), "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing.json")})
    assert r.code == 3 and "cannot read the service-account key" in r.err      # a configuration error


def test_the_assertion_is_an_rs256_jwt_the_key_verifies(cloud_fake):
    fake = cloud_fake("gcp", None)
    jwt = gcp.assertion(fake.key, time.time())
    claims = fake.verified(jwt)
    assert claims["iss"] == fake.key["client_email"] and claims["exp"] - claims["iat"] == 3600
    assert fake.verified(jwt[:-4] + ("AAAA" if not jwt.endswith("AAAA") else "BBBB")) is None
    assert fake.verified(gcp.assertion({**fake.key, "token_uri": "https://elsewhere/token"}, time.time())) is None
    assert fake.verified(gcp.assertion(fake.key, time.time() - 7200)) is None          # expired


def test_requests_the_discovery_document_does_not_allow_are_violations(cloud_fake):
    contract = cloud_fake("gcp", None).contract
    path = "/compute/v1/projects/p/zones/z/instances"
    body = {"name": "a", "machineType": "zones/z/machineTypes/e2-small", "labels": {"a": "b"}}
    assert contract.check_request("POST", path, {"requestId": "x"}, body, {}) == []
    assert contract.check_request("POST", path, {"requestID": "x"}, body, {})
    assert contract.check_request("POST", path, {}, {**body, "size": "small"}, {})
    assert contract.check_request("POST", path, {}, {**body, "tags": ["nself"]}, {})
    assert contract.check_request("POST", path, {}, {**body, "labels": {"a": 1}}, {})
    assert contract.check_request("PUT", path, {}, body, {})
    assert contract.check_request("GET", path, {"maxResults": "ten"}, None, {})
    assert contract.check_response("GET", path + "/a", {}, 200, {"status": "BOOTING"})
