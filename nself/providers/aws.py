"""AWS EC2 (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/): the Query API (form POST
`Action=…&Version=2016-11-15`, XML answers) signed with SigV4, one endpoint per region
(ec2.<region>.amazonaws.com), so a signer per region. A server needs a network: nself uses the
region's default VPC (creating it when the account has none: CreateDefaultVpc), its default
subnet, and a security group named `nself` that lets SSH, HTTP and HTTPS in. The SSH key is
imported once per region under nself's name for it. RunInstances carries the request id as its
ClientToken, so repeating a create whose answer was lost makes no second instance (EC2 answers
with the first). EC2 has no prices in its API: sizes are priced from the dated catalog.

Server ids are `<region>/<instance id>`, because every call about an instance goes to its region."""
from __future__ import annotations

import base64
import os
import re
from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree

from nself.errors import UsageError
from nself.providers import catalog
from nself.providers.base import SERVERS, CloudServer, Provider, ProvisionRequest, Region, Size
from nself.providers.eks import Eks
from nself.providers.keys import key_name
from nself.providers.signers import SigV4Signer

VERSION = "2016-11-15"
CANONICAL = "099720109477"         # the AWS account Canonical publishes its Ubuntu images from
_STATUS = {"pending": "starting", "running": "running", "stopping": "stopped", "stopped": "stopped",
           "shutting-down": "deleting", "terminated": "deleting"}
_LIVE = ["pending", "running", "stopping", "stopped"]
_FAMILIES = ["t3.*", "t3a.*", "m7i.*", "c7i.*"]   # general-purpose sizes the catalog prices
_OPEN_PORTS = (22, 80, 443)         # SSH for nself, HTTP and HTTPS for the app
_ENDPOINTS = {"ec2": "https://ec2.{region}.amazonaws.com", "eks": "https://eks.{region}.amazonaws.com",
              "iam": "https://iam.amazonaws.com", "sts": "https://sts.{region}.amazonaws.com"}


def _error(body) -> str | None:
    """EC2's and IAM's XML errors (Code, Message); EKS's JSON ones (message)."""
    if isinstance(body, dict):
        return body.get("message") or body.get("Message")
    found = re.search(r"<Code>(.*?)</Code>\s*<Message>(.*?)</Message>", body, re.S) if isinstance(body, str) else None
    return f"{found[1]}: {found[2]}" if found else None


def _data(element: ElementTree.Element):
    """An XML answer as data: elements with children become dicts, `<item>` runs lists, leaves text."""
    children = list(element)
    if not children:
        return element.text or ""
    if all(child.tag.rsplit("}", 1)[-1] == "item" for child in children):
        return [_data(child) for child in children]
    return {child.tag.rsplit("}", 1)[-1]: _data(child) for child in children}


def _items(data: dict, key: str) -> list:
    """A list member, which an empty answer gives as an empty element."""
    return data.get(key) or []


def _filters(**values: str | list[str]) -> dict[str, str]:
    """EC2 filters as form fields: Filter.N.Name and Filter.N.Value.M (names with `-` and `:`
    are passed as keyword arguments with `_` and `__`)."""
    fields = {}
    for n, (name, wanted) in enumerate(values.items(), 1):
        fields[f"Filter.{n}.Name"] = name.replace("__", ":").replace("_", "-")
        for m, value in enumerate([wanted] if isinstance(wanted, str) else wanted, 1):
            fields[f"Filter.{n}.Value.{m}"] = value
    return fields


def _tags(n: int, resource: str, tags: dict[str, str]) -> dict[str, str]:
    fields = {f"TagSpecification.{n}.ResourceType": resource}
    for m, (key, value) in enumerate(tags.items(), 1):
        fields[f"TagSpecification.{n}.Tag.{m}.Key"] = key
        fields[f"TagSpecification.{n}.Tag.{m}.Value"] = value
    return fields


class Aws(Eks, Provider):
    name = "aws"
    title = "AWS EC2"
    base_url = "https://ec2.{zone}.amazonaws.com"
    image = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"   # Canonical's, newest
    ssh_user = "ubuntu"              # Canonical's images take the key for `ubuntu`, not root
    id_pattern = r"[a-z]{2}(-[a-z]+)+-\d+/i-[0-9a-f]{8,17}"
    user_data_limit = 16 * 1024      # before base64 (RunInstances: UserData)
    disk_gb = 8                      # the Ubuntu image's root volume (EBS, billed apart)
    capabilities = SERVERS | {"k8s", "k8s-token"}
    describe_error = staticmethod(_error)

    def __init__(self, api, values: dict[str, str] | None = None):
        super().__init__(api)
        self.values = values or {}
        self.home = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.regional: dict[tuple[str, str], object] = {}

    @classmethod
    def configure(cls, api, values: dict[str, str]) -> Provider:
        return cls(api, values)

    @staticmethod
    def auth(values: dict[str, str]):
        home = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        return SigV4Signer(values["access_key"], values["secret_key"], home, "ec2")

    def _url(self, region: str, service: str) -> str:
        """The endpoint of a service in a region (NSELF_AWS_API_URL: one endpoint for all)."""
        return (os.environ.get("NSELF_AWS_API_URL") or _ENDPOINTS[service].format(region=region)).rstrip("/")

    def _signer(self, region: str, service: str) -> SigV4Signer:
        return SigV4Signer(self.values["access_key"], self.values["secret_key"], region, service)

    def _in(self, region: str, service: str = "ec2"):
        """The API of one service in one region, signed for both."""
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", region):
            raise UsageError(f"{region!r} is not an AWS region name", hint="see cloud.providers.regions aws")
        if (service, region) not in self.regional:
            self.regional[service, region] = self.api.at(self._url(region, service),
                                                         auth=self._signer(region, service))
        return self.regional[service, region]

    def _call(self, region: str, action: str, fields: dict | None = None, idempotent: bool = True,
              service: str = "ec2", version: str = VERSION, ok: tuple[int, ...] = ()) -> dict | None:
        """One Query API call (EC2's, or IAM's); reads are safe to repeat, and so is a create with
        a ClientToken. A status in `ok` gives None."""
        text = self._in(region, service).request("POST", "/", form={"Action": action, "Version": version,
                                                                    **(fields or {})},
                                                 raw=True, idempotent=idempotent, ok=ok)
        return None if text is None else _data(ElementTree.fromstring(text))

    def _pages(self, region: str, action: str, key: str, fields: dict) -> list:
        found, token = [], None
        for _ in range(1000):
            answer = self._call(region, action, {**fields, **({"NextToken": token} if token else {})})
            found += _items(answer, key)
            token = answer.get("nextToken")
            if not token:
                return found
        raise UsageError(f"aws: {action} in {region} did not end after 1000 pages")

    def validate(self) -> str:
        return f"AWS credentials with {len(self.list_regions())} regions enabled"

    def list_regions(self) -> list[Region]:
        return [Region(r["regionName"], r["regionName"]) for r in _items(self._call(self.home, "DescribeRegions"),
                                                                          "regionInfo")]

    def list_sizes(self) -> list[Size]:
        prices = {s.id: s.monthly for s in catalog.sizes("aws")}
        kinds = self._pages(self.home, "DescribeInstanceTypes", "instanceTypeSet", {
            "MaxResults": "100", **_filters(instance_type=_FAMILIES, **{
                "processor-info.supported-architecture": "x86_64"})})
        return [Size(k["instanceType"], int(k["vCpuInfo"]["defaultVCpus"]), int(k["memoryInfo"]["sizeInMiB"]) / 1024,
                     self.disk_gb, prices.get(k["instanceType"]), "USD") for k in kinds]

    # --- what a server needs in its region ------------------------------------------------
    def _image(self, region: str, image: str) -> str:
        if image.startswith("ami-"):
            return image
        images = _items(self._call(region, "DescribeImages", {"Owner.1": CANONICAL, **_filters(
            name=image, state="available")}), "imagesSet")
        if not images:
            raise UsageError(f"AWS has no Canonical image named {image!r} in {region}",
                             hint="pass --image ami-… or a name pattern of Canonical's images")
        return max(images, key=lambda i: i.get("creationDate", ""))["imageId"]

    def _key(self, region: str, public_key: str) -> str:
        name = key_name(public_key)
        if not _items(self._call(region, "DescribeKeyPairs", _filters(key_name=name)), "keySet"):
            self._call(region, "ImportKeyPair", {"KeyName": name,
                                                 "PublicKeyMaterial": base64.b64encode(public_key.encode()).decode(),
                                                 **_tags(1, "key-pair", {"managed-by": "nself"})}, idempotent=False)
        return name

    def _default_vpc(self, region: str) -> str:
        """The region's default VPC, created when the account has none there."""
        vpcs = _items(self._call(region, "DescribeVpcs", _filters(isDefault="true")), "vpcSet")
        return vpcs[0]["vpcId"] if vpcs else self._call(region, "CreateDefaultVpc", idempotent=False)["vpc"]["vpcId"]

    def _default_subnets(self, region: str, vpc: str | None = None) -> list[str]:
        """The default VPC's default subnets (one per availability zone), by zone."""
        vpc = vpc or self._default_vpc(region)
        subnets = _items(self._call(region, "DescribeSubnets", _filters(vpc_id=vpc, default_for_az="true")),
                         "subnetSet")
        if not subnets:
            raise UsageError(f"the default VPC {vpc} in {region} has no default subnet",
                             hint="create one: aws ec2 create-default-subnet --availability-zone …")
        return [s["subnetId"] for s in sorted(subnets, key=lambda s: s.get("availabilityZone", ""))]

    def _network(self, region: str) -> tuple[str, str]:
        """(subnet id, security group id): the default VPC's first default subnet, and nself's group."""
        vpc = self._default_vpc(region)
        subnet = self._default_subnets(region, vpc)[0]
        groups = _items(self._call(region, "DescribeSecurityGroups", _filters(vpc_id=vpc, group_name="nself")),
                        "securityGroupInfo")
        if groups:
            return subnet, groups[0]["groupId"]
        group = self._call(region, "CreateSecurityGroup", {
            "GroupName": "nself", "GroupDescription": "SSH, HTTP and HTTPS to servers nself made", "VpcId": vpc,
            **_tags(1, "security-group", {"managed-by": "nself"})}, idempotent=False)["groupId"]
        ingress = {"GroupId": group}
        for n, port in enumerate(_OPEN_PORTS, 1):
            ingress.update({f"IpPermissions.{n}.IpProtocol": "tcp", f"IpPermissions.{n}.FromPort": str(port),
                            f"IpPermissions.{n}.ToPort": str(port), f"IpPermissions.{n}.IpRanges.1.CidrIp": "0.0.0.0/0",
                            f"IpPermissions.{n}.Ipv6Ranges.1.CidrIpv6": "::/0"})
        self._call(region, "AuthorizeSecurityGroupIngress", ingress, idempotent=False)
        return subnet, group

    def create(self, request: ProvisionRequest) -> CloudServer:
        region = request.region
        subnet, group = self._network(region)
        fields = {"ImageId": self._image(region, request.image), "InstanceType": request.size, "MinCount": "1",
                  "MaxCount": "1", "KeyName": self._key(region, request.ssh_public_key), "SubnetId": subnet,
                  "SecurityGroupId.1": group, "ClientToken": request.request_id,
                  **_tags(1, "instance", {"Name": request.name, "managed-by": "nself",
                                          "nself-request": request.request_id})}
        if request.user_data:
            fields["UserData"] = base64.b64encode(request.user_data.encode()).decode()
        answer = self._call(region, "RunInstances", fields)
        return self._server(region, _items(answer, "instancesSet")[0])

    # --- instances ------------------------------------------------------------------------
    def _instances(self, region: str, fields: dict) -> list[CloudServer]:
        reservations = self._pages(region, "DescribeInstances", "reservationSet", {"MaxResults": "100", **fields})
        return [self._server(region, i) for r in reservations for i in _items(r, "instancesSet")]

    def _everywhere(self, fields: dict) -> list[CloudServer]:
        """The instances matching `fields` in every enabled region, asked at once."""
        regions = [r.id for r in self.list_regions()]
        with ThreadPoolExecutor(max_workers=min(8, len(regions) or 1)) as pool:
            return [s for found in pool.map(lambda r: self._instances(r, fields), regions) for s in found]

    def get(self, server_id: str) -> CloudServer | None:
        region, instance = server_id.split("/", 1)
        found = [s for s in self._instances(region, _filters(instance_id=instance)) if s.status != "deleting"]
        return found[0] if found else None

    def find(self, name: str) -> list[CloudServer]:
        return self._everywhere(_filters(tag__Name=name, instance_state_name=_LIVE))

    def list(self) -> list[CloudServer]:
        return self._everywhere(_filters(instance_state_name=_LIVE))

    def destroy(self, server_id: str) -> None:
        """Terminating is final; an instance already gone counts as destroyed."""
        region, instance = server_id.split("/", 1)
        if self.get(server_id) is not None:
            self._call(region, "TerminateInstances", {"InstanceId.1": instance})

    def reboot(self, server_id: str) -> None:
        region, instance = server_id.split("/", 1)
        self._call(region, "RebootInstances", {"InstanceId.1": instance})

    @staticmethod
    def _server(region: str, data: dict) -> CloudServer:
        tags = {t["key"]: t.get("value", "") for t in _items(data, "tagSet")}
        return CloudServer(f"{region}/{data['instanceId']}", tags.get("Name", ""),
                           _STATUS.get((data.get("instanceState") or {}).get("name"), "unknown"),
                           data.get("ipAddress") or None, data.get("ipv6Address") or None, region,
                           data.get("instanceType"), data.get("launchTime"), tags)


DRIVER = Aws
