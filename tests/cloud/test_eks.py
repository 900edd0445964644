"""EKS end to end through the nself CLI against the AWS fake (EKS requests checked against botocore's
EKS model, IAM's against its IAM model) and the test Kubernetes API, which takes only tokens the
fake's reviewer accepts: pre-signed STS URLs that botocore's signer signs the same way."""
import base64
import calendar
import json
import os
import sys
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from nself.providers import eks
from nself.providers.signers import SigV4Signer
from nself.testing.clouds.eks import presigned_by_botocore

pytest_plugins = ["cloud_project"]
STS = "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"


def decoded(token: str) -> str:
    body = token.removeprefix(eks.TOKEN_PREFIX)
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


@pytest.mark.parametrize("session", [None, "session/token+="])
def test_the_token_is_the_url_botocore_presigns(session):
    when = calendar.timegm(time.strptime("20250102T030405Z", "%Y%m%dT%H%M%SZ"))
    signer = SigV4Signer("AKIDEXAMPLE", "secret/key+x", "eu-west-1", "sts", token=session, clock=lambda: when)
    token = eks.token(signer.presign(STS, {"x-k8s-aws-id": "prod"}, 60))
    assert token.startswith("k8s-aws-v1.") and "=" not in token                 # unpadded base64url
    assert decoded(token) == presigned_by_botocore(STS, {"x-k8s-aws-id": "prod"}, "AKIDEXAMPLE", "secret/key+x",
                                                   "eu-west-1", "20250102T030405Z", 60, session)
    credential = eks.exec_credential(token, when)
    assert credential["kind"] == "ExecCredential" and credential["status"]["token"] == token
    assert credential["status"]["expirationTimestamp"] == "2025-01-02T03:18:05Z"  # 14 min: before EKS's 15


def test_create_kubeconfig_pods_list_delete(nself, project, cloud_fake, kube_api, tmp_path):
    fake = cloud_fake("aws", None)
    fake.endpoint = kube_api.url
    reviewed = []
    kube_api.api.review = lambda token: reviewed.append(fake.review(token)) or reviewed[-1] == "prod"
    kubeconfig = tmp_path / "merged"
    # the kubeconfig's exec entry runs `nself` from PATH, as kubectl would
    env = {**fake.env(), "KUBECONFIG": str(kubeconfig),
           "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]}
    r = nself(["cloud.k8s.create", "aws", "--name", "prod", "--region", "us-east-1", "--size", "small",
               "--nodes", "2", "--yes", "--json"], cwd=project, env=env)
    assert r.code == 0, r.err
    result = r.json()
    assert (result["id"], result["status"], result["context"], result["nodes"]) == \
        ("us-east-1/prod", "running", "aws-prod", 2)
    assert result["version"] == "1.33"                                   # the newest supported one

    # nself's roles, with AWS's managed policies; the cluster in two or more default subnets
    assert {n: r["_policies"] for n, r in fake.roles.items()} == {
        "nself-eks-cluster": ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"],
        "nself-eks-node": ["arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
                           "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
                           "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"]}
    cluster = fake.eks_clusters["us-east-1", "prod"]
    assert cluster["roleArn"].endswith(":role/nself-eks-cluster")
    assert len(cluster["resourcesVpcConfig"]["subnetIds"]) == 3
    group = fake.nodegroups["us-east-1", "prod", "prod-nodes"]
    # small: 1-2 vCPU, 1-2 GB, the cheapest the catalog prices
    assert group["instanceTypes"] == ["t3.micro"] and group["scalingConfig"] == {
        "minSize": 2, "maxSize": 2, "desiredSize": 2}
    assert group["nodeRole"].endswith(":role/nself-eks-node") and group["status"] == "ACTIVE"

    user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    assert "token" not in user and user["exec"]["command"] == "nself"
    assert user["exec"]["args"] == ["cloud.k8s.token", "aws", "us-east-1/prod"]
    assert "15 minutes" in user["exec"]["installHint"]

    r = nself(["k8s.pods", "--json"], cwd=project, env=env)
    assert r.code == 0, r.err                                            # through the new context
    assert reviewed and set(reviewed) == {"prod"}                        # with tokens EKS would take

    assert [c["id"] for c in nself(["cloud.k8s.list", "aws", "--json"], cwd=project, env=env).json()] == \
        ["us-east-1/prod"]
    r = nself(["cloud.k8s.delete", "aws", "prod", "--yes"], cwd=project, env=env)
    assert r.code == 0, r.err
    assert fake.eks_clusters == {} and fake.nodegroups == {}
    eks_calls = [(c["method"], c["path"]) for c in fake.requests if c.get("service") == "eks"
                 and c["method"] == "DELETE"]
    assert eks_calls == [("DELETE", "/clusters/prod/node-groups/prod-nodes"), ("DELETE", "/clusters/prod")]
    assert fake.violations == []


def test_the_token_command_and_its_review(nself, project, cloud_fake):
    fake = cloud_fake("aws", None)
    fake.eks_clusters["us-east-1", "prod"] = {"name": "prod"}
    r = nself(["cloud.k8s.token", "aws", "us-east-1/prod"], cwd=project, env=fake.env())
    assert r.code == 0, r.err
    credential = json.loads(r.out)
    token = credential["status"]["token"]
    assert fake.review(token) == "prod"
    assert fake.secret not in r.out + r.err
    url = decoded(token)
    assert urlsplit(url).netloc == urlsplit(fake.url).netloc             # NSELF_AWS_API_URL stands for sts.<region>
    assert dict(parse_qsl(urlsplit(url).query))["X-Amz-Credential"].endswith("/us-east-1/sts/aws4_request")
    fake.eks_clusters["us-east-1", "other"] = fake.eks_clusters.pop(("us-east-1", "prod"))
    assert fake.review(token) is None                                   # signed for prod, not other
    forged = url.replace("X-Amz-Expires=60", "X-Amz-Expires=600")
    assert fake.review(eks.token(forged)) is None
    assert fake.review("Bearer-less-garbage") is None
    r = nself(["cloud.k8s.token", "aws", "prod"], cwd=project, env=fake.env())
    assert r.code == 2 and "<region>/<name>" in r.err
    r = nself(["cloud.k8s.token", "digitalocean", "c1"], cwd=project, env={"DIGITALOCEAN_TOKEN": "x"})
    assert r.code == 8


def test_roles_named_by_flag_are_used_and_a_missing_one_stops_before_anything_is_made(nself, project, cloud_fake,
                                                                                      kube_api, tmp_path):
    fake = cloud_fake("aws", None)
    fake.endpoint = kube_api.url
    for name in ("ops-eks", "ops-nodes"):
        fake.iam_CreateRole({"RoleName": name, "AssumeRolePolicyDocument": "{}"})
    env = {**fake.env(), "KUBECONFIG": str(tmp_path / "kubeconfig")}
    r = nself(["cloud.k8s.create", "aws", "--name", "k", "--region", "ap-south-1", "--cluster-role", "ops-eks",
               "--node-role", "arn:aws:iam::123456789012:role/ops-nodes", "--yes", "--json"], cwd=project, env=env)
    assert r.code == 0, r.err
    assert sorted(fake.roles) == ["ops-eks", "ops-nodes"]                 # none of nself's made
    assert fake.eks_clusters["ap-south-1", "k"]["roleArn"] == "arn:aws:iam::123456789012:role/ops-eks"
    r = nself(["cloud.k8s.create", "aws", "--name", "k2", "--region", "ap-south-1", "--cluster-role", "nope",
               "--yes"], cwd=project, env=env)
    assert r.code == 8 and "no IAM role 'nope'" in r.err
    assert ("ap-south-1", "k2") not in fake.eks_clusters
    r = nself(["cloud.k8s.create", "digitalocean", "--name", "k", "--region", "fra1", "--node-role", "x"],
              cwd=project, env={"DIGITALOCEAN_TOKEN": "x", "NSELF_DIGITALOCEAN_API_URL": fake.url})
    assert r.code == 2 and "--node-role" in r.err
    assert fake.violations == []


def test_throttling_is_retried_and_refused_credentials_exit_8(nself, project, cloud_fake):
    fake = cloud_fake("aws", None)
    fake.fail("GET", "^/clusters$", 429, retry_after=0)
    fake.fail("GET", "^/cluster-versions$", 503, times=2)
    assert nself(["cloud.k8s.list", "aws", "--json"], cwd=project, env=fake.env()).json() == []
    assert nself(["cloud.k8s.versions", "aws", "--json"], cwd=project, env=fake.env()).json() == \
        ["1.33", "1.32", "1.31", "1.29"]                                 # UNSUPPORTED left out
    assert len(fake.calls("GET", "^/cluster-versions$")) == 3
    secret = "wrong/secret+key-4242-abcdefghijklmnop"
    r = nself(["cloud.k8s.list", "aws", "--json", "--debug"], cwd=project,
              env={**fake.env(), "AWS_SECRET_ACCESS_KEY": secret})
    assert r.code == 8 and secret not in r.out + r.err
    assert fake.violations == []


def test_eks_requests_botocore_would_not_send_are_violations():
    from nself.testing import awsrest

    body = {"nodegroupName": "n", "subnets": ["s-1"], "nodeRole": "arn:aws:iam::1:role/r",
            "scalingConfig": {"minSize": 1, "maxSize": 1, "desiredSize": 1}}
    assert awsrest.read_request("eks", "POST", "/clusters/c/node-groups", {}, body)[2] == []
    assert awsrest.read_request("eks", "POST", "/clusters/c/node-groups", {}, {**body, "nodeCount": 1})[2]
    assert awsrest.read_request("eks", "POST", "/clusters/c/node-groups", {}, {**body, "subnets": "s-1"})[2]
    assert awsrest.read_request("eks", "POST", "/clusters/c/node-groups", {}, {"nodegroupName": "n"})[2]
    assert awsrest.read_request("eks", "GET", "/clusters", {"max": "1"}, None)[2]
    assert awsrest.read_request("eks", "PUT", "/clusters/c", {}, None)[2]
    assert awsrest.check_answer("eks", "DescribeCluster", {"cluster": {"name": "c", "state": "ACTIVE"}})


@pytest.mark.parametrize("lost", ["^/clusters$", "^/clusters/prod/node-groups$"])
def test_a_create_answered_500_after_it_happened_makes_one(nself, project, cloud_fake, kube_api, tmp_path, lost):
    fake = cloud_fake("aws", None)
    fake.endpoint = kube_api.url
    fake.fail("POST", lost, 500, after=True)
    r = nself(["cloud.k8s.create", "aws", "--name", "prod", "--region", "us-east-1", "--yes", "--json"],
              cwd=project, env={**fake.env(), "KUBECONFIG": str(tmp_path / "kubeconfig")})
    assert r.code == 0, r.err
    assert r.json()["status"] == "running"
    assert len(fake.calls("POST", lost)) == 1 and list(fake.eks_clusters) == [("us-east-1", "prod")]
    assert list(fake.nodegroups) == [("us-east-1", "prod", "prod-nodes")]


def test_a_lost_create_that_made_nothing_is_an_error_not_a_guess(nself, project, cloud_fake, tmp_path):
    fake = cloud_fake("aws", None)
    fake.fail("POST", "^/clusters$", 500)
    r = nself(["cloud.k8s.create", "aws", "--name", "prod", "--region", "us-east-1", "--yes"], cwd=project,
              env={**fake.env(), "KUBECONFIG": str(tmp_path / "kubeconfig")})
    assert r.code == 8 and fake.eks_clusters == {} and len(fake.calls("POST", "^/clusters$")) == 1
