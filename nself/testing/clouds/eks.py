"""EKS, IAM and STS for the AWS fake. EKS requests (rest-json) are read back into botocore's EKS
model and its answers validated against it (`awsrest`); IAM's (the query protocol) go through
`awsquery` with botocore's IAM model. State: roles with their attached policies; clusters per
region that turn ACTIVE after `boot_polls` reads; node groups that need an ACTIVE cluster, turn
ACTIVE the same way and, once deleted, disappear after `boot_polls` lists; a cluster with node
groups cannot be deleted (ResourceInUseException), as in EKS.

`review(token)` plays EKS's token reviewer (aws-iam-authenticator's server): it decodes a
`k8s-aws-v1.` token and checks the pre-signed GetCallerIdentity URL with botocore's signer, its
age (15 minutes) and the signed `x-k8s-aws-id` header, and returns the cluster name it was made
for (None when it is not valid)."""
from __future__ import annotations

import base64
import calendar
import hmac
import time
from urllib.parse import parse_qsl, urlsplit

from nself.testing import awsquery, awsrest
from nself.testing.clouds.base import public

ACCOUNT = "123456789012"
# Any base64 does for a test API served over plain HTTP; EKS sends the cluster CA's PEM.
AUTHORITY = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n").decode()
_EKS_STATUS = {400: "InvalidParameterException", 401: "UnrecognizedClientException", 404: "ResourceNotFoundException",
               409: "ResourceInUseException", 429: "ThrottlingException", 500: "ServerException",
               503: "ServiceUnavailableException"}


def presigned_by_botocore(url: str, headers: dict[str, str], key: str, secret: str, region: str, stamp: str,
                          expires: int, token: str | None = None) -> str:
    """`url` pre-signed for STS by botocore's SigV4QueryAuth at the time `stamp` (its add_auth
    takes the clock's time, so its steps are run here one by one)."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest("GET", url, headers=dict(headers))
    request.context["timestamp"] = stamp
    signer = SigV4QueryAuth(Credentials(key, secret, token), "sts", region, expires=expires)
    signer._modify_request_before_signing(request)
    signature = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    signer._inject_signature_to_request(request, signature)
    return request.url


class EksFake:
    """Mixed into AwsFake (which gives the lock, faults, subnets, catalog and `requests`)."""

    endpoint = "https://127.0.0.1:6443"     # what DescribeCluster says; a test points it at its API server

    def _eks_state(self) -> None:
        self.roles: dict[str, dict] = {}
        self.eks_clusters: dict[tuple[str, str], dict] = {}
        self.nodegroups: dict[tuple[str, str, str], dict] = {}

    # --- EKS (rest-json) ------------------------------------------------------------------
    def eks_error(self, status: int, message: str, kind: str | None = None) -> tuple[int, object, dict]:
        kind = kind or _EKS_STATUS.get(status, "ClientException")
        return status, {"message": message}, {"x-amzn-ErrorType": kind}

    def serve_eks(self, method: str, raw_path: str, region: str, body) -> tuple[int, object, dict]:
        path, query = urlsplit(raw_path).path, awsrest.query_of(raw_path)
        operation, params, problems = awsrest.read_request("eks", method, path, query, body)
        if problems:
            self.violations.extend(problems)
            return self.eks_error(400, "; ".join(problems))

        def carry_out():
            return getattr(self, f"eks_{operation}")(region, params)
        fault = self.injected(method, path, carry_out)
        if fault:
            status, _, extra = fault
            return (*self.eks_error(status, f"injected {status}")[:2], extra)
        status, answer = carry_out()
        if status >= 400:
            return self.eks_error(status, answer[1], answer[0])
        self.violations.extend(awsrest.check_answer("eks", operation, answer))
        return status, answer, {}

    def _eks_cluster(self, region: str, name: str, tick: bool = False) -> dict | None:
        cluster = self.eks_clusters.get((region, name))
        if cluster is not None and tick:
            self.tick(cluster)
            if cluster["status"] == "CREATING" and self.booted(cluster):
                cluster["status"] = "ACTIVE"
        return cluster

    def eks_DescribeClusterVersions(self, region, params):
        return 200, {"clusterVersions": [{"clusterVersion": v["version"], "versionStatus": v["status"]}
                                         for v in self.catalog["eks_versions"]]}

    def eks_CreateCluster(self, region, params):
        name = params["name"]
        if (region, name) in self.eks_clusters:
            return 409, ("ResourceInUseException", f"Cluster already exists with name: {name}")
        if params.get("version") not in {v["version"] for v in self.catalog["eks_versions"]
                                         if v["status"] != "UNSUPPORTED"}:
            return 400, ("InvalidParameterException", f"unsupported Kubernetes version {params.get('version')}")
        if params["roleArn"] not in {r["Arn"] for r in self.roles.values()}:
            return 400, ("InvalidParameterException", f"Role {params['roleArn']} does not exist")
        subnets = [self.subnets.get(s) for s in params["resourcesVpcConfig"].get("subnetIds") or []]
        if None in subnets or any(s["_region"] != region for s in subnets):
            return 400, ("InvalidParameterException", "one of the subnets does not exist in this region")
        if len({s["AvailabilityZone"] for s in subnets}) < 2:
            return 400, ("InvalidParameterException", "Subnets specified must be in at least two different AZs")
        cluster = {"name": name, "arn": f"arn:aws:eks:{region}:{ACCOUNT}:cluster/{name}", "createdAt": time.time(),
                   "version": params["version"], "roleArn": params["roleArn"], "status": "CREATING",
                   "endpoint": self.endpoint, "certificateAuthority": {"data": AUTHORITY},
                   "resourcesVpcConfig": {"subnetIds": [s["SubnetId"] for s in subnets],
                                          "endpointPublicAccess": True},
                   "tags": params.get("tags") or {}, "clientRequestToken": params.get("clientRequestToken", ""),
                   "_polls": 0}
        self.eks_clusters[region, name] = cluster
        return 200, {"cluster": public(cluster)}

    def eks_DescribeCluster(self, region, params):
        cluster = self._eks_cluster(region, params["name"], tick=True)
        if cluster is None:
            return 404, ("ResourceNotFoundException", f"No cluster found for name: {params['name']}.")
        return 200, {"cluster": public(cluster)}

    def eks_ListClusters(self, region, params):
        names = sorted(n for r, n in self.eks_clusters if r == region)
        start = int(params.get("nextToken") or 0)
        following = {"nextToken": str(start + self.page_cap)} if start + self.page_cap < len(names) else {}
        return 200, {"clusters": names[start:start + self.page_cap], **following}

    def eks_DeleteCluster(self, region, params):
        cluster = self._eks_cluster(region, params["name"])
        if cluster is None:
            return 404, ("ResourceNotFoundException", f"No cluster found for name: {params['name']}.")
        if any(r == region and c == params["name"] for r, c, _ in self.nodegroups):
            return 409, ("ResourceInUseException", "Cluster has nodegroups attached")
        del self.eks_clusters[region, params["name"]]       # DELETING, then gone: this fake forgets it at once
        return 200, {"cluster": {**public(cluster), "status": "DELETING"}}

    def eks_CreateNodegroup(self, region, params):
        cluster = self._eks_cluster(region, params["clusterName"])
        if cluster is None:
            return 404, ("ResourceNotFoundException", f"No cluster found for name: {params['clusterName']}.")
        if cluster["status"] != "ACTIVE":
            return 400, ("InvalidRequestException", f"Cluster '{cluster['name']}' is not in ACTIVE status")
        key = (region, cluster["name"], params["nodegroupName"])
        if key in self.nodegroups:
            return 409, ("ResourceInUseException", f"NodeGroup already exists with name {key[2]}")
        if params["nodeRole"] not in {r["Arn"] for r in self.roles.values()}:
            return 400, ("InvalidParameterException", f"Role {params['nodeRole']} does not exist")
        kinds = {k["type"] for k in self.catalog["instance_types"]}
        if not set(params.get("instanceTypes") or []) <= kinds:
            return 400, ("InvalidParameterException", f"unknown instance types {params.get('instanceTypes')}")
        group = {"nodegroupName": key[2], "clusterName": cluster["name"], "status": "CREATING",
                 "nodegroupArn": f"arn:aws:eks:{region}:{ACCOUNT}:nodegroup/{cluster['name']}/{key[2]}",
                 "scalingConfig": params.get("scalingConfig") or {}, "instanceTypes": params.get("instanceTypes"),
                 "subnets": params["subnets"], "nodeRole": params["nodeRole"], "amiType": params.get("amiType"),
                 "createdAt": time.time(), "_polls": 0}
        self.nodegroups[key] = group
        return 200, {"nodegroup": public(group)}

    def eks_ListNodegroups(self, region, params):
        mine = [(k, g) for k, g in self.nodegroups.items() if k[:2] == (region, params["clusterName"])]
        for key, group in mine:
            if group["status"] == "DELETING":
                self.tick(group)
                if self.booted(group):
                    del self.nodegroups[key]
        return 200, {"nodegroups": [k[2] for k in self.nodegroups if k[:2] == (region, params["clusterName"])]}

    def eks_DescribeNodegroup(self, region, params):
        group = self.nodegroups.get((region, params["clusterName"], params["nodegroupName"]))
        if group is None:
            return 404, ("ResourceNotFoundException", f"No node group found for name: {params['nodegroupName']}.")
        if group["status"] == "CREATING":
            self.tick(group)
            if self.booted(group):
                group["status"] = "ACTIVE"
        return 200, {"nodegroup": public(group)}

    def eks_DeleteNodegroup(self, region, params):
        group = self.nodegroups.get((region, params["clusterName"], params["nodegroupName"]))
        if group is None:
            return 404, ("ResourceNotFoundException", f"No node group found for name: {params['nodegroupName']}.")
        group.update(status="DELETING", _polls=0)
        return 200, {"nodegroup": public(group)}

    # --- IAM (query) ----------------------------------------------------------------------
    def serve_iam(self, form: dict) -> tuple[int, object, dict]:
        action, params, problems = awsquery.read_request(form, "iam")
        if problems:
            self.violations.extend(problems)
            return 400, awsquery.query_error("ValidationError", "; ".join(problems)), {}
        fault = self.injected("POST", action, lambda: getattr(self, f"iam_{action}")(params))
        if fault:
            return fault[0], awsquery.query_error("ServiceFailure", "injected"), fault[2]
        status, answer = getattr(self, f"iam_{action}")(params)
        if status >= 400:
            return status, awsquery.query_error(*answer), {}
        return status, awsquery.answer(action, answer, "iam"), {}

    def iam_GetRole(self, params):
        role = self.roles.get(params["RoleName"])
        if role is None:
            return 404, ("NoSuchEntity", f"The role with name {params['RoleName']} cannot be found.")
        return 200, {"Role": public(role)}

    def iam_CreateRole(self, params):
        name = params["RoleName"]
        if name in self.roles:
            return 409, ("EntityAlreadyExists", f"Role with name {name} already exists.")
        self.roles[name] = {"Path": "/", "RoleName": name, "RoleId": "AROA" + name.upper().replace("-", "")[:16].ljust(
            16, "X"), "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", "CreateDate": "2026-01-01T00:00:00Z",
            "AssumeRolePolicyDocument": params["AssumeRolePolicyDocument"], "_policies": [],
            "_tags": params.get("Tags") or []}
        return 200, {"Role": public(self.roles[name])}

    def iam_AttachRolePolicy(self, params):
        role = self.roles.get(params["RoleName"])
        if role is None:
            return 404, ("NoSuchEntity", f"The role with name {params['RoleName']} cannot be found.")
        role["_policies"].append(params["PolicyArn"])
        return 200, {}

    # --- STS through EKS's token reviewer --------------------------------------------------
    def review(self, token: str) -> str | None:
        """The cluster a valid `k8s-aws-v1.` token names (see the module's docstring); None if invalid."""
        if not token.startswith("k8s-aws-v1."):
            return None
        body = token[len("k8s-aws-v1."):]
        try:
            url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        except ValueError:
            return None
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        scope = query.get("X-Amz-Credential", "").split("/")
        if query.get("Action") != "GetCallerIdentity" or len(scope) != 5 or scope[0] != self.token or \
                scope[3] != "sts" or query.get("X-Amz-SignedHeaders") != "host;x-k8s-aws-id":
            return None
        stamp = query.get("X-Amz-Date", "")
        if abs(calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")) - time.time()) > 15 * 60:
            return None
        cluster = self._signed_cluster(url, query, scope[2], stamp)
        return cluster if cluster and any(n == cluster for _, n in self.eks_clusters) else None

    def _signed_cluster(self, url: str, query: dict, region: str, stamp: str) -> str | None:
        """Which `x-k8s-aws-id` value botocore's query signer gives this URL's signature, among
        the clusters the fake has (the header itself is not in the URL, as in EKS)."""
        mine = "&".join(f"{k}={v}" for k, v in query.items() if not k.startswith("X-Amz-"))
        base = urlsplit(url)._replace(query=mine).geturl()
        for _, name in self.eks_clusters:
            theirs = dict(parse_qsl(urlsplit(presigned_by_botocore(
                base, {"x-k8s-aws-id": name}, self.token, self.secret, region, stamp,
                int(query["X-Amz-Expires"]))).query))
            if hmac.compare_digest(theirs["X-Amz-Signature"], query.get("X-Amz-Signature", "")):
                return name
        return None
