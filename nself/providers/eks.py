"""Amazon EKS (docs.aws.amazon.com/eks/latest/APIReference/) for the AWS driver: the rest-json API
at eks.<region>.amazonaws.com, IAM's Query API (iam.amazonaws.com, signed for us-east-1) for the
two roles a cluster needs, and the bearer token EKS takes: a pre-signed STS GetCallerIdentity
URL, as aws-iam-authenticator and `aws eks get-token` make it, so no aws CLI is needed.

A cluster is a control plane plus one managed node group `<name>-nodes` in the region's default
VPC subnets. Create: the roles (found or created), the cluster, a wait until it is ACTIVE (EKS
takes about ten minutes), the node group; the cluster counts as running when both are ACTIVE.
Delete goes the other way: the node groups, a wait until they are gone, then the cluster.
Cluster ids are `<region>/<name>`, because EKS names clusters per region."""
from __future__ import annotations

import base64
import datetime
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import yaml

from nself.errors import UsageError
from nself.providers.base import Cluster, ClusterRequest, newest_first
from nself.providers.http import ProviderError

IAM_VERSION = "2010-05-08"
STS_VERSION = "2011-06-15"
TOKEN_PREFIX = "k8s-aws-v1."
# EKS accepts a token for 15 minutes after the URL was signed (aws-iam-authenticator: its
# X-Amz-Date); clients are told it ends a minute earlier so they never send a stale one.
TOKEN_LIFETIME = 15 * 60
_EXPIRES = 60                      # X-Amz-Expires, as aws-iam-authenticator presigns
ROLES = {
    "cluster": ("nself-eks-cluster", "eks.amazonaws.com", ("AmazonEKSClusterPolicy",)),
    "node": ("nself-eks-node", "ec2.amazonaws.com",
             ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")),
}
_STATUS = {"CREATING": "starting", "PENDING": "starting", "UPDATING": "running", "ACTIVE": "running",
           "DELETING": "deleting", "FAILED": "error"}
_GROUP_READY = {"ACTIVE", "UPDATING", "DEGRADED"}


def token(presigned_url: str) -> str:
    """The EKS bearer token for a pre-signed GetCallerIdentity URL: the prefix and the URL in
    unpadded base64url (aws-iam-authenticator pkg/token)."""
    return TOKEN_PREFIX + base64.urlsafe_b64encode(presigned_url.encode()).decode().rstrip("=")


def exec_credential(value: str, signed_at: float) -> dict:
    """The client.authentication.k8s.io ExecCredential a kubeconfig's exec entry reads."""
    ends = datetime.datetime.fromtimestamp(signed_at + TOKEN_LIFETIME - 60, datetime.UTC)
    return {"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential", "spec": {},
            "status": {"token": value, "expirationTimestamp": ends.strftime("%Y-%m-%dT%H:%M:%SZ")}}


def kubeconfig(cluster_id: str, endpoint: str, authority: str) -> str:
    """A kubeconfig whose user runs `nself cloud.k8s.token aws <id>` for every new token: the
    token is a pre-signed URL that EKS accepts for 15 minutes, so none is stored."""
    name = cluster_id.replace("/", "-")
    return yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": name,
            "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": authority}}],
            "users": [{"name": name, "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "nself",
                "args": ["cloud.k8s.token", "aws", cluster_id], "interactiveMode": "Never",
                "provideClusterInfo": False, "installHint": _HINT}}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}]}, sort_keys=False)


_HINT = ("EKS tokens expire 15 minutes after they are made, so this kubeconfig stores none: kubectl and "
         "nself run `nself cloud.k8s.token aws <cluster>` for a fresh one. It needs nself on PATH "
         "(pip install nself) and AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
         "nself cloud.providers.init aws); not the aws CLI.")


def _trust(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


class Eks:
    """The managed-Kubernetes half of the AWS driver (mixed into `Aws`, which gives `_in`,
    `_call` for Query APIs, `home`, `list_regions` and the default VPC's subnets)."""

    k8s_deadline = 1500.0          # seconds a control plane or node group may take to settle
    poll_cap = 10.0                # the longest pause between two polls

    def _eks(self, region: str, method: str, path: str, **kwargs):
        return self._in(region, "eks").request(method, path, **kwargs)

    # --- IAM ------------------------------------------------------------------------------
    def _role(self, kind: str, given: str) -> str:
        """The role's ARN: `given` (a name or an ARN) when it exists, else nself's own, created
        with AWS's managed policies when missing."""
        if given.startswith("arn:"):
            return given
        name, service, policies = ROLES[kind]
        found = self._iam("GetRole", {"RoleName": given or name}, missing_ok=True)
        if found is not None:
            return found["GetRoleResult"]["Role"]["Arn"]
        if given:
            raise ProviderError(f"aws: there is no IAM role {given!r}",
                                hint=f"pass an existing role's name or ARN, or leave --{kind}-role out "
                                     f"for nself's {name}")
        role = self._iam("CreateRole", {"RoleName": name, "AssumeRolePolicyDocument": _trust(service),
                                        "Description": f"EKS {kind} role made by nself",
                                        "Tags.member.1.Key": "managed-by", "Tags.member.1.Value": "nself"})
        for policy in policies:
            self._iam("AttachRolePolicy", {"RoleName": name, "PolicyArn": f"arn:aws:iam::aws:policy/{policy}"})
        return role["CreateRoleResult"]["Role"]["Arn"]

    def _iam(self, action: str, fields: dict, missing_ok: bool = False) -> dict | None:
        """One IAM call (global; signed for us-east-1); with `missing_ok`, NoSuchEntity (404) is None."""
        return self._call("us-east-1", action, fields, idempotent=action.startswith("Get"), service="iam",
                          version=IAM_VERSION, ok=(404,) if missing_ok else ())

    # --- clusters -------------------------------------------------------------------------
    def k8s_versions(self) -> list[str]:
        found, following = [], None
        for _ in range(100):
            page = self._eks(self.home, "GET", "/cluster-versions",
                             params={"maxResults": 100, **({"nextToken": following} if following else {})})
            found += [v["clusterVersion"] for v in page.get("clusterVersions") or []
                      if v.get("versionStatus") != "UNSUPPORTED"]
            following = page.get("nextToken")
            if not following:
                break
        return newest_first(found)

    def k8s_create(self, request: ClusterRequest) -> Cluster:
        region = request.region
        version = self.k8s_versions()[0] if request.version == "latest" else request.version
        cluster_role, node_role = self._role("cluster", request.cluster_role), self._role("node", request.node_role)
        subnets = self._default_subnets(region)
        self._create_once(region, "/clusters", f"/clusters/{request.name}", "cluster", {
            "name": request.name, "version": version, "roleArn": cluster_role,
            "resourcesVpcConfig": {"subnetIds": subnets, "endpointPublicAccess": True},
            "tags": {"managed-by": "nself"}})
        self._settle(lambda: self._eks(region, "GET", f"/clusters/{request.name}")["cluster"]["status"] == "ACTIVE",
                     f"EKS cluster {request.name}")
        group = f"{request.name}-nodes"
        self._create_once(region, f"/clusters/{request.name}/node-groups",
                          f"/clusters/{request.name}/node-groups/{group}", "nodegroup", {
                              "nodegroupName": group, "subnets": subnets, "nodeRole": node_role,
                              "instanceTypes": [request.size], "amiType": "AL2023_x86_64_STANDARD",
                              "scalingConfig": {"minSize": request.nodes, "maxSize": request.nodes,
                                                "desiredSize": request.nodes},
                              "tags": {"managed-by": "nself"}})
        return self.k8s_get(f"{region}/{request.name}")

    def _create_once(self, region: str, path: str, where: str, kind: str, body: dict) -> None:
        """POST a create with a fresh clientRequestToken. When its answer is lost (a timeout, a
        5xx), what `where` names counts as created if it is this request's: a cluster carrying
        the token, or a node group at all (it is named after a cluster this call just made;
        EKS does not echo a node group's token). Nothing is sent twice."""
        token = uuid.uuid4().hex
        try:
            self._eks(region, "POST", path, json={**body, "clientRequestToken": token})
        except ProviderError as exc:
            found = self._eks(region, "GET", where, ok=(404,)) if exc.ambiguous else None
            if not found or found[kind].get("clientRequestToken", token) != token:
                raise

    def _settle(self, done, what: str) -> None:
        """Poll until `done()`, soon at first and then less often, within `k8s_deadline`."""
        ends, pause = time.monotonic() + self.k8s_deadline, 0.5
        while not done():
            if time.monotonic() > ends:
                raise ProviderError(f"aws: {what} did not settle within {self.k8s_deadline:.0f} s",
                                    hint="see the EKS console; nothing was deleted")
            time.sleep(pause)
            pause = min(pause * 1.5, self.poll_cap)

    def _groups(self, region: str, name: str) -> list[dict]:
        names = self._eks(region, "GET", f"/clusters/{name}/node-groups").get("nodegroups") or []
        return [self._eks(region, "GET", f"/clusters/{name}/node-groups/{group}")["nodegroup"] for group in names]

    def k8s_get(self, cluster_id: str) -> Cluster | None:
        """Running when the control plane and every node group are ACTIVE."""
        region, name = cluster_id.split("/", 1)
        body = self._eks(region, "GET", f"/clusters/{name}", ok=(404,))
        if body is None:
            return None
        groups = self._groups(region, name) if body["cluster"]["status"] == "ACTIVE" else []
        cluster = self._cluster(region, body["cluster"], sum((g.get("scalingConfig") or {}).get("desiredSize", 0)
                                                           for g in groups))
        if cluster.status == "running" and (not groups or any(g["status"] not in _GROUP_READY for g in groups)):
            failed = any(g["status"].endswith("FAILED") for g in groups)
            return Cluster(**{**cluster.to_dict(), "status": "error" if failed else "starting"})
        return cluster

    def k8s_list(self) -> list[Cluster]:
        regions = [r.id for r in self.list_regions()]
        with ThreadPoolExecutor(max_workers=min(8, len(regions) or 1)) as pool:
            return [c for found in pool.map(self._clusters_in, regions) for c in found]

    def _clusters_in(self, region: str) -> list[Cluster]:
        names, following = [], None
        for _ in range(100):
            page = self._eks(region, "GET", "/clusters",
                             params={"maxResults": 100, **({"nextToken": following} if following else {})})
            names += page.get("clusters") or []
            following = page.get("nextToken")
            if not following:
                break
        return [self._cluster(region, self._eks(region, "GET", f"/clusters/{n}")["cluster"]) for n in names]

    def k8s_delete(self, cluster_id: str) -> None:
        """Node groups first (EKS refuses to delete a cluster that has any), then the cluster;
        one already gone counts as deleted. The roles stay: other clusters use them."""
        region, name = cluster_id.split("/", 1)
        groups = self._groups(region, name) if self._eks(region, "GET", f"/clusters/{name}", ok=(404,)) else None
        if groups is None:
            return
        for group in groups:
            self._eks(region, "DELETE", f"/clusters/{name}/node-groups/{group['nodegroupName']}", ok=(404,))
        self._settle(lambda: not self._eks(region, "GET", f"/clusters/{name}/node-groups").get("nodegroups"),
                     f"deleting the node groups of {name}")
        self._eks(region, "DELETE", f"/clusters/{name}", ok=(404,))

    def k8s_kubeconfig(self, cluster_id: str) -> str:
        region, name = cluster_id.split("/", 1)
        cluster = self._eks(region, "GET", f"/clusters/{name}")["cluster"]
        return kubeconfig(cluster_id, cluster["endpoint"], cluster["certificateAuthority"]["data"])

    def k8s_token(self, cluster_id: str) -> dict:
        """A fresh ExecCredential for the cluster: GetCallerIdentity pre-signed for its region's
        STS with the cluster's name in the signed `x-k8s-aws-id` header."""
        region, _, name = cluster_id.partition("/")
        if not name:
            raise UsageError(f"{cluster_id!r} is not an EKS cluster id", hint="pass <region>/<name>, as "
                                                                             "cloud.k8s.list aws shows")
        signer = self._signer(region, "sts")
        url = self._url(region, "sts") + f"/?Action=GetCallerIdentity&Version={STS_VERSION}"
        return exec_credential(token(signer.presign(url, {"x-k8s-aws-id": name}, _EXPIRES)), signer.clock())

    @staticmethod
    def _cluster(region: str, data: dict, nodes: int | None = None) -> Cluster:
        return Cluster(f"{region}/{data['name']}", data["name"], _STATUS.get(data.get("status"), "unknown"), region,
                       data.get("version"), data.get("endpoint"), nodes or None)
