"""AWS EC2 end to end through the nself CLI against the EC2 fake over real HTTP: every request
signed as botocore signs and shaped as botocore's EC2 model says (the fake checks both)."""
import base64

from nself.providers.signers import SigV4Signer

from cloud_project import provision_with_ssh

pytest_plugins = ["cloud_project"]     # the project, key and inventory fixtures


def test_provision_exec_list_reboot_destroy(nself, project, inventory, cloud_fake, ssh_hosts, tmp_path):
    fake = cloud_fake("aws", None)
    host, = ssh_hosts(1)           # the fake reports 127.0.0.1; this sshd plays the instance
    env = fake.env()
    r = provision_with_ssh(nself, project, fake, host, tmp_path, "aws", "eu-central-1")
    assert r.code == 0, r.err
    result = r.json()
    # medium: 2-4 vCPU and 4-8 GB, the cheapest in the catalog of the types EC2 lists
    assert (result["size"], result["monthly"], result["ipv4"]) == ("t3a.medium", 27.45, "127.0.0.1")
    assert result["id"].startswith("eu-central-1/i-") and result["host_key"].startswith("ssh-ed25519 SHA256:")
    entry = inventory()["web1"]
    assert (entry["provider"], entry["id"], entry["region"], entry["user"]) == ("aws", result["id"], "eu-central-1",
                                                                                 "root")

    # eu-central-1 had no default VPC: nself made one, and its security group, once
    assert [c["path"] for c in fake.requests].count("CreateDefaultVpc") == 1
    group, = [g for g in fake.groups.values() if g["GroupName"] == "nself"]
    assert sorted(p["FromPort"] for p in group["IpPermissions"]) == [22, 80, 443]
    instance, = fake.servers.values()
    assert instance["SecurityGroups"] == [{"GroupId": group["GroupId"], "GroupName": "nself"}]
    assert instance["ImageId"] == "ami-0a1b2c3d4e5f60002"     # Canonical's newest amd64, not a look-alike
    pair, = fake.key_pairs
    assert pair["_material"] == (host.user_key.parent / f"{host.user_key.name}.pub").read_text().strip()
    assert fake.user_data[instance["InstanceId"]] == (tmp_path / "init.yaml").read_text()
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["Name"] == "web1" and tags["managed-by"] == "nself" and tags["nself-request"] == \
        instance["ClientToken"]

    rows = nself(["cloud.servers.list", "--refresh", "--json"], cwd=project, env=env).json()
    assert [(row["name"], row["state"]) for row in rows] == [("web1", "running")]
    r = nself(["cloud.servers.exec", "--json", "--", "echo", "hello"], cwd=project, env=env)
    assert r.code == 0 and r.json()[0]["stdout"] == "hello\n"
    r = nself(["cloud.servers.reboot", "web1", "--yes", "--json"], cwd=project, env=env)
    assert r.code == 0, r.err
    assert r.json()["via"] == "aws API" and fake.reboots == [instance["InstanceId"]]
    r = nself(["cloud.servers.destroy", "web1", "--yes"], cwd=project, env=env)
    assert r.code == 0, r.err
    assert fake.servers == {} and list(fake.terminated) == [instance["InstanceId"]] and inventory() == {}
    assert fake.violations == []


def test_a_create_answered_500_after_it_happened_makes_one_server(nself, project, inventory, cloud_fake, key):
    fake = cloud_fake("aws", None)
    fake.fail("POST", "^RunInstances$", 500, after=True)
    r = nself(["cloud.provision", "aws", "--name", "web1", "--region", "us-east-1", "--ssh-key", str(key),
               "--yes", "--json"], cwd=project, env=fake.env())
    assert r.code == 0, r.err
    runs = fake.calls("POST", "^RunInstances$")
    assert len(runs) == 2 and len(fake.servers) == 1                  # repeated with the same ClientToken
    assert runs[0]["body"]["ClientToken"] == runs[1]["body"]["ClientToken"]
    assert inventory()["web1"]["id"] == r.json()["id"] == "us-east-1/" + next(iter(fake.servers))
    assert inventory()["web1"]["user"] == "ubuntu"              # who logs in on Canonical's images
    assert not fake.calls("POST", "^CreateDefaultVpc$")                # us-east-1 has its default VPC
    assert fake.violations == []


def test_throttling_and_unavailable_are_retried(nself, project, cloud_fake, key):
    fake = cloud_fake("aws", None)
    fake.fail("POST", "^DescribeInstanceTypes$", 503, times=2)        # EC2's RequestLimitExceeded is a 503
    fake.fail("POST", "^RunInstances$", 429, retry_after=1)
    r = nself(["cloud.provision", "aws", "--name", "web1", "--region", "ap-south-1", "--ssh-key", str(key),
               "--yes", "--json"], cwd=project, env=fake.env())
    assert r.code == 0, r.err
    assert len(fake.calls("POST", "^DescribeInstanceTypes$")) >= 3 and len(fake.servers) == 1
    first, second = fake.calls("POST", "^RunInstances$")
    assert second["at"] - first["at"] >= 0.9                            # Retry-After: 1 was honoured
    assert fake.violations == []


def test_refused_credentials_exit_8_and_no_secret_anywhere(nself, project, cloud_fake, key):
    fake = cloud_fake("aws", None)
    secret = "wrong/secret+key-4242-abcdefghijklmnop"
    env = {**fake.env(), "AWS_SECRET_ACCESS_KEY": secret}
    r = nself(["cloud.provision", "aws", "--name", "web1", "--region", "us-east-1", "--ssh-key", str(key),
               "--yes", "--json", "--debug"], cwd=project, env=env)
    assert r.code == 8
    error = r.json()
    assert "401 AuthFailure" in error["error"] and "cloud.providers.init aws" in error["hint"]
    assert secret not in r.out + r.err
    assert all(secret not in (c["authorization"] or "") for c in fake.requests)   # SigV4 never sends it
    assert not (project / ".nself").exists()


def test_dry_run_changes_nothing_and_shows_the_regional_endpoint(nself, project, cloud_fake, key):
    fake = cloud_fake("aws", None)
    r = nself(["cloud.provision", "aws", "--name", "web1", "--region", "eu-central-1", "--size", "large",
               "--ssh-key", str(key), "--dry-run", "--json"], cwd=project, env=fake.env())
    assert r.code == 0, r.err
    step, = r.json()["plan"]["steps"]
    assert step["method"] == "POST" and step["body"]["size"] == "t3.xlarge" and step["body"]["vcpu"] == 4
    assert {c["path"] for c in fake.requests} == {"DescribeRegions", "DescribeInstanceTypes"}
    assert not (project / ".nself").exists()
    r = nself(["cloud.provision", "aws", "--name", "web1", "--region", "mars-north-1", "--ssh-key", str(key),
               "--dry-run"], cwd=project, env=fake.env())
    assert r.code == 2 and "eu-central-1" in r.err
    assert fake.violations == []


def test_a_request_signed_for_another_region_or_with_another_key_is_refused(cloud_fake):
    import requests

    fake = cloud_fake("aws", None)
    body = "Action=DescribeRegions&Version=2016-11-15"

    def send(signer):
        prepared = requests.Request("POST", fake.url, data=body, headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}).prepare()
        return requests.Session().send(signer(prepared), timeout=10)

    assert send(SigV4Signer(fake.token, fake.secret, "us-east-1", "ec2")).status_code == 200
    assert send(SigV4Signer(fake.token, "not-the-secret", "us-east-1", "ec2")).status_code == 401
    assert send(SigV4Signer(fake.token, fake.secret, "us-east-1", "s3")).status_code == 401
    late = SigV4Signer(fake.token, fake.secret, "us-east-1", "ec2", clock=lambda: 1_000_000_000)
    assert send(late).status_code == 401                               # outside AWS's 15 minutes
    assert send(SigV4Signer(fake.token, fake.secret, "sa-east-1", "ec2")).status_code == 401   # not enabled


def test_requests_botocore_would_not_send_are_violations(cloud_fake):
    from nself.testing import awsquery

    form = {"Action": "RunInstances", "Version": "2016-11-15", "ImageId": "ami-1", "MinCount": "1",
            "MaxCount": "1", "TagSpecification.1.Tag.1.Key": "Name"}
    assert awsquery.read_request(form)[2] == []
    assert awsquery.read_request({**form, "TagSpecifications.1.Tag.1.Key": "x"})[2]     # the model's name
    assert awsquery.read_request({**form, "SecurityGroupId.2": "sg-1"})[2]             # numbered from 1
    assert awsquery.read_request({**form, "MinCount": "one"})[2]
    assert awsquery.read_request({**form, "InstanceType": "t9.huge"})[2]               # not in the enum
    assert awsquery.read_request({**form, "Version": "2014-01-01"})[2]
    assert awsquery.read_request({**form, "UserData": base64.b64encode(b"x").decode()})[2] == []
