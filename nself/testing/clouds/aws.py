"""AWS EC2 over the Query API: every request's SigV4 signature is recomputed with botocore's
signer (the region is the one the credential scope names, as one endpoint serves them all
here), its form fields are read back into botocore's EC2 model (`awsquery`: unknown fields,
wrong types and anything botocore would serialise differently are violations), and answers are
written from the model's output shapes. State per region: default VPC, subnets, security
groups, key pairs, instances; RunInstances honours ClientToken as EC2 does (the same token
answers with the same instance); terminated instances stay visible, as in EC2."""
from __future__ import annotations

import base64
import calendar
import fnmatch
import hmac
import json
import re
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

from nself.testing import awsquery
from nself.testing.clouds.base import Answer, FakeCloud, now, public
from nself.testing.clouds.eks import EksFake

_CODES = {401: "AuthFailure", 404: "InvalidAction", 405: "InvalidAction", 429: "RequestLimitExceeded",
          500: "InternalError", 503: "Unavailable"}
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([a-z0-9-]+)/(ec2|eks|iam)/aws4_request, "
                   r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})")
_STATES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}


def _hex(n: int = 17) -> str:
    return uuid.uuid4().hex[:n]


def _state(name: str) -> dict:
    return {"Code": _STATES[name], "Name": name}


class AwsFake(EksFake, FakeCloud):
    name = "aws"
    token_env = "AWS_ACCESS_KEY_ID"
    text_type = "text/xml;charset=UTF-8"
    routes = (
        ("POST", r"DescribeRegions", "describe_regions"),
        ("POST", r"DescribeInstanceTypes", "describe_instance_types"),
        ("POST", r"DescribeImages", "describe_images"),
        ("POST", r"DescribeKeyPairs", "describe_key_pairs"),
        ("POST", r"ImportKeyPair", "import_key_pair"),
        ("POST", r"DescribeVpcs", "describe_vpcs"),
        ("POST", r"CreateDefaultVpc", "create_default_vpc"),
        ("POST", r"DescribeSubnets", "describe_subnets"),
        ("POST", r"DescribeSecurityGroups", "describe_security_groups"),
        ("POST", r"CreateSecurityGroup", "create_security_group"),
        ("POST", r"AuthorizeSecurityGroupIngress", "authorize_ingress"),
        ("POST", r"RunInstances", "run_instances"),
        ("POST", r"DescribeInstances", "describe_instances"),
        ("POST", r"RebootInstances", "reboot_instances"),
        ("POST", r"TerminateInstances", "terminate_instances"),
    )

    def __init__(self, specs: Path | None = None, secret: str = "fake/secret+key0123456789abcdefEXAMPLE", **kwargs):
        super().__init__(None, token="AKIAFAKE0123456789AB", **kwargs)    # the model comes with botocore
        self.secret = secret
        self.regions = [r["name"] for r in self.catalog["regions"]]
        self.vpcs: dict[str, dict] = {}
        self.subnets: dict[str, dict] = {}
        self.groups: dict[str, dict] = {}
        self.key_pairs: list[dict] = []
        self.terminated: dict[str, dict] = {}
        self.reboots: list[str] = []
        self.user_data: dict[str, str] = {}
        self.tokens: dict[tuple[str, str], dict] = {}      # (region, ClientToken) → its reservation
        self._eks_state()
        for region in self.catalog["regions"]:
            if region["default_vpc"]:
                self._default_vpc(region["name"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def env(self) -> dict[str, str]:
        return {**super().env(), "AWS_SECRET_ACCESS_KEY": self.secret}

    def error(self, status, code, message):
        return status, awsquery.error(_CODES.get(status, code), message)

    # --- the Query protocol ---------------------------------------------------------------
    def signed_scope(self, method: str, raw_path: str, headers: dict, body: bytes) -> tuple[str, str] | None:
        """The credential scope's (region, service) when botocore's signer gives the same
        signature (and the time is within AWS's 15 minutes); None otherwise."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        found = _AUTH.fullmatch(headers.get("Authorization") or "")
        lower = {k.lower(): v for k, v in headers.items()}
        stamp = lower.get("x-amz-date", "")
        if not found or found[1] != self.token or not re.fullmatch(r"\d{8}T\d{6}Z", stamp) or stamp[:8] != found[2]:
            return None
        if abs(calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")) - time.time()) > 900:
            return None
        signed = found[5].split(";")
        if not {"host", "x-amz-date"} <= set(signed) or not set(signed) <= set(lower):
            return None
        request = AWSRequest(method, f"http://{lower['host']}{raw_path}", data=body,
                             headers={name: lower[name] for name in signed if name != "host"})
        request.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(self.token, self.secret), found[4], found[3])
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        return (found[3], found[4]) if hmac.compare_digest(expected, found[6]) else None

    def _serve(self, method, raw_path, headers, raw_body):
        """EC2 and IAM speak the Query protocol (`path` in `requests` is the Action), EKS
        rest-json (the path); which one a request is for, its credential scope says."""
        service = (_AUTH.fullmatch(headers.get("Authorization") or "") or [None] * 5)[4] or "ec2"
        form = dict(parse_qsl(raw_body.decode(), keep_blank_values=True)) if service != "eks" else {}
        body = (json.loads(raw_body) if raw_body else None) if service == "eks" else form
        with self.lock:
            self.requests.append({"service": service, "method": method,
                                  "path": urlparse(raw_path).path if service == "eks" else form.get("Action", ""),
                                  "query": {}, "body": body, "at": time.monotonic(),
                                  "authorization": headers.get("Authorization")})
            scope = self.signed_scope(method, raw_path, headers, raw_body)
            if scope is None:
                refused = "The security token included in the request is invalid"
                return self.eks_error(401, refused) if service == "eks" else \
                    (*self.error(401, "AuthFailure", "AWS was not able to validate the provided access credentials"),
                     {})
            region = scope[0]
            if region not in self.regions:
                return (*self.error(401, "AuthFailure", f"the region {region} is not enabled"), {})
            if service == "eks":
                return self.serve_eks(method, raw_path, region, body)
            if service == "iam":
                return self.serve_iam(form)
            action = form.get("Action", "")
            _, params, problems = awsquery.read_request(form)
            if problems:
                self.violations.extend(problems)
                return (*self.error(400, "InvalidParameterValue", "; ".join(problems)), {})

            def carry_out():
                return self.route(method, action, {"region": region}, params)
            fault = self.injected(method, action, carry_out)
            if fault:
                return fault
            status, answer = carry_out()
            return status, answer if status >= 400 else awsquery.answer(action, answer), {}

    def _filtered(self, things: list[dict], filters: list[dict], fields) -> list[dict]:
        """EC2 filters: every filter matches one of its values (`*` and `?` as wildcards);
        a filter name EC2 does not take for this call is refused, as EC2 does."""
        kept = []
        for thing in things:
            values = fields(thing)
            for f in filters:
                if f["Name"] not in values and not (f["Name"].startswith("tag:") and "tag:" in values):
                    raise self.refuse(400, "InvalidParameterValue", f"The filter '{f['Name']}' is invalid")
            if all(any(fnmatch.fnmatchcase(v, pattern) for v in self._values(values, f["Name"])
                       for pattern in f.get("Values") or []) for f in filters):
                kept.append(thing)
        return kept

    @staticmethod
    def _values(values: dict, name: str) -> list[str]:
        if name.startswith("tag:") and name not in values:
            return [t["Value"] for t in values.get("tag:", []) if t["Key"] == name[4:]]
        return values[name]

    def _page(self, items: list, params: dict) -> dict:
        start = int(params.get("NextToken") or 0)
        chunk = items[start:start + self.page_cap]
        return {"NextToken": str(start + self.page_cap)} if start + self.page_cap < len(items) else {}, chunk

    # --- regions and catalog --------------------------------------------------------------
    def describe_regions(self, query, body):
        return 200, {"Regions": [{"RegionName": r, "Endpoint": f"ec2.{r}.amazonaws.com",
                                  "OptInStatus": "opt-in-not-required"} for r in self.regions]}

    def describe_instance_types(self, query, body):
        params = body or {}
        kinds = self._filtered(self.catalog["instance_types"], params.get("Filters") or [], lambda k: {
            "instance-type": [k["type"]], "processor-info.supported-architecture": [k["arch"]]})
        following, chunk = self._page(kinds, params)
        return 200, {**following, "InstanceTypes": [{
            "InstanceType": k["type"], "CurrentGeneration": True, "VCpuInfo": {"DefaultVCpus": k["vcpus"]},
            "MemoryInfo": {"SizeInMiB": k["mib"]}, "ProcessorInfo": {"SupportedArchitectures": [k["arch"]]}}
            for k in chunk]}

    def describe_images(self, query, body):
        params = body or {}
        owners = params.get("Owners") or []
        images = [i for i in self.catalog["images"] if not owners or i["owner"] in owners]
        images = self._filtered(images, params.get("Filters") or [], lambda i: {
            "name": [i["name"]], "state": ["available"], "image-id": [i["id"]]})
        return 200, {"Images": [{"ImageId": i["id"], "Name": i["name"], "CreationDate": i["created"],
                                 "OwnerId": i["owner"], "State": "available", "Architecture": "x86_64"}
                                for i in images]}

    # --- key pairs ------------------------------------------------------------------------
    def describe_key_pairs(self, query, body):
        mine = [k for k in self.key_pairs if k["_region"] == query.get("region")]
        found = self._filtered(mine, (body or {}).get("Filters") or [], lambda k: {"key-name": [k["KeyName"]]})
        return 200, {"KeyPairs": [public(k) for k in found]}

    def import_key_pair(self, query, body):
        region = query["region"]
        if any(k["KeyName"] == body["KeyName"] and k["_region"] == region for k in self.key_pairs):
            return self.error(400, "InvalidKeyPair.Duplicate", f"The keypair '{body['KeyName']}' already exists.")
        material = body["PublicKeyMaterial"].decode()
        if not material.startswith(("ssh-ed25519 ", "ssh-rsa ", "ecdsa-sha2-")):
            return self.error(400, "InvalidKey.Format", "Key is not in valid OpenSSH public key format")
        key = {"KeyName": body["KeyName"], "KeyPairId": f"key-{_hex()}", "KeyFingerprint": "SHA256:" + _hex(43),
               "_region": region, "_material": material}
        self.key_pairs.append(key)
        return 200, {k: v for k, v in public(key).items()}

    # --- network --------------------------------------------------------------------------
    def _default_vpc(self, region: str) -> dict:
        vpc = {"VpcId": f"vpc-{_hex()}", "IsDefault": True, "CidrBlock": "172.31.0.0/16", "State": "available",
               "_region": region}
        self.vpcs[vpc["VpcId"]] = vpc
        for n, zone in enumerate("abc"):
            subnet = {"SubnetId": f"subnet-{_hex()}", "VpcId": vpc["VpcId"], "AvailabilityZone": f"{region}{zone}",
                      "DefaultForAz": True, "MapPublicIpOnLaunch": True, "CidrBlock": f"172.31.{16 * n}.0/20",
                      "State": "available", "_region": region}
            self.subnets[subnet["SubnetId"]] = subnet
        group = {"GroupId": f"sg-{_hex()}", "GroupName": "default", "VpcId": vpc["VpcId"],
                 "Description": "default VPC security group", "IpPermissions": [], "_region": region}
        self.groups[group["GroupId"]] = group
        return vpc

    def _in_region(self, store: dict, query: dict) -> list[dict]:
        return [thing for thing in store.values() if thing["_region"] == query.get("region")]

    def describe_vpcs(self, query, body):
        found = self._filtered(self._in_region(self.vpcs, query), (body or {}).get("Filters") or [], lambda v: {
            "isDefault": [str(v["IsDefault"]).lower()], "vpc-id": [v["VpcId"]]})
        return 200, {"Vpcs": [public(v) for v in found]}

    def create_default_vpc(self, query, body):
        if any(v["IsDefault"] for v in self._in_region(self.vpcs, query)):
            return self.error(400, "DefaultVpcAlreadyExists", "A Default VPC already exists for this account")
        return 200, {"Vpc": public(self._default_vpc(query["region"]))}

    def describe_subnets(self, query, body):
        found = self._filtered(self._in_region(self.subnets, query), (body or {}).get("Filters") or [], lambda s: {
            "vpc-id": [s["VpcId"]], "default-for-az": [str(s["DefaultForAz"]).lower()]})
        return 200, {"Subnets": [public(s) for s in found]}

    def describe_security_groups(self, query, body):
        found = self._filtered(self._in_region(self.groups, query), (body or {}).get("Filters") or [], lambda g: {
            "vpc-id": [g["VpcId"]], "group-name": [g["GroupName"]]})
        return 200, {"SecurityGroups": [public(g) for g in found]}

    def create_security_group(self, query, body):
        if body.get("VpcId") not in {v["VpcId"] for v in self._in_region(self.vpcs, query)}:
            return self.error(400, "InvalidVpcID.NotFound", f"The vpc ID '{body.get('VpcId')}' does not exist")
        if any(g["GroupName"] == body["GroupName"] and g["VpcId"] == body["VpcId"] for g in self.groups.values()):
            return self.error(400, "InvalidGroup.Duplicate", f"The security group '{body['GroupName']}' already exists")
        group = {"GroupId": f"sg-{_hex()}", "GroupName": body["GroupName"], "VpcId": body["VpcId"],
                 "Description": body["Description"], "IpPermissions": [], "_region": query["region"]}
        self.groups[group["GroupId"]] = group
        return 200, {"GroupId": group["GroupId"]}

    def authorize_ingress(self, query, body):
        group = self.one(self.groups, body.get("GroupId", ""), "The security group does not exist",
                         "InvalidGroup.NotFound")
        group["IpPermissions"] += body.get("IpPermissions") or []
        return 200, {"Return": True}

    # --- instances ------------------------------------------------------------------------
    def _view(self, instance: dict) -> dict:
        if instance["State"]["Name"] == "pending" and self.booted(instance):
            instance.update(State=_state("running"), PublicIpAddress=instance["_ip"])
        return public(instance)

    def _instance(self, instance_id: str, query: dict) -> dict:
        found = self.servers.get(instance_id)
        if found is None or found["_region"] != query.get("region"):
            raise Answer(self.error(400, "InvalidInstanceID.NotFound",
                                    f"The instance ID '{instance_id}' does not exist"))
        return found

    def run_instances(self, query, body):
        region = query["region"]
        if (region, body.get("ClientToken")) in self.tokens:
            return 200, self.tokens[region, body["ClientToken"]]
        if (body["MinCount"], body["MaxCount"]) != (1, 1):
            return self.error(400, "InvalidParameterValue", "this fake makes one instance at a time")
        if body["ImageId"] not in {i["id"] for i in self.catalog["images"]}:
            return self.error(400, "InvalidAMIID.NotFound", f"The image id '[{body['ImageId']}]' does not exist")
        if body.get("InstanceType") not in {k["type"] for k in self.catalog["instance_types"]}:
            return self.error(400, "InvalidParameterValue", f"Invalid value '{body.get('InstanceType')}'")
        if body.get("KeyName") not in {k["KeyName"] for k in self.key_pairs if k["_region"] == region}:
            return self.error(400, "InvalidKeyPair.NotFound", f"The key pair '{body.get('KeyName')}' does not exist")
        subnet = self.subnets.get(body.get("SubnetId", ""))
        if subnet is None or subnet["_region"] != region:
            return self.error(400, "InvalidSubnetID.NotFound", f"The subnet ID '{body.get('SubnetId')}' does not exist")
        groups = [self.one(self.groups, g, f"The security group '{g}' does not exist", "InvalidGroup.NotFound")
                  for g in body.get("SecurityGroupIds") or []]
        tags = [t for spec in body.get("TagSpecifications") or [] if spec["ResourceType"] == "instance"
                for t in spec.get("Tags") or []]
        instance_id = f"i-{_hex()}"
        if "UserData" in body:
            self.user_data[instance_id] = base64.b64decode(body["UserData"]).decode()
        instance = {"InstanceId": instance_id, "ImageId": body["ImageId"], "InstanceType": body["InstanceType"],
                    "KeyName": body["KeyName"], "State": _state("pending"), "LaunchTime": now(),
                    "Placement": {"AvailabilityZone": subnet["AvailabilityZone"]}, "SubnetId": subnet["SubnetId"],
                    "VpcId": subnet["VpcId"], "PrivateIpAddress": f"172.31.0.{len(self.servers) + 10}",
                    "SecurityGroups": [{"GroupId": g["GroupId"], "GroupName": g["GroupName"]} for g in groups],
                    "Tags": tags, "ClientToken": body.get("ClientToken", ""), "Architecture": "x86_64",
                    "_region": region, "_polls": 0, "_ip": "127.0.0.1"}
        self.servers[instance_id] = instance
        reservation = {"ReservationId": f"r-{_hex()}", "OwnerId": "123456789012", "Groups": [],
                       "Instances": [public(instance)]}
        if body.get("ClientToken"):
            self.tokens[region, body["ClientToken"]] = reservation
        return 200, reservation

    def describe_instances(self, query, body):
        params = body or {}
        every = [i for i in [*self.servers.values(), *self.terminated.values()] if i["_region"] == query.get("region")]
        wanted = params.get("InstanceIds")
        every = [i for i in every if not wanted or i["InstanceId"] in wanted]
        for instance in every:
            self.tick(instance)
        found = self._filtered(every, params.get("Filters") or [], lambda i: {
            "instance-id": [i["InstanceId"]], "instance-state-name": [i["State"]["Name"]], "tag:": i["Tags"]})
        following, chunk = self._page(found, params)
        return 200, {**following, "Reservations": [{"ReservationId": f"r-{i['InstanceId'][2:]}",
                                                    "OwnerId": "123456789012", "Instances": [self._view(i)]}
                                                   for i in chunk]}

    def reboot_instances(self, query, body):
        for instance_id in body["InstanceIds"]:
            self._instance(instance_id, query)
            self.reboots.append(instance_id)
        return 200, {}

    def terminate_instances(self, query, body):
        changes = []
        for instance_id in body["InstanceIds"]:
            instance = self._instance(instance_id, query)
            changes.append({"InstanceId": instance_id, "PreviousState": instance["State"],
                            "CurrentState": _state("shutting-down")})
            instance["State"] = _state("terminated")
            instance.pop("PublicIpAddress", None)
            self.terminated[instance_id] = self.servers.pop(instance_id)
        return 200, {"TerminatingInstances": changes}
