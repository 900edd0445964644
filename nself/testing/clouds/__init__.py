"""Stateful fake provider APIs over real HTTP on 127.0.0.1, for tests of nself and of projects.

Each fake keeps servers, SSH keys and actions in memory, boots a server after a few polls,
paginates with a small page size, answers in the provider's own error shape, and checks every
request (and its own answers) against the provider's description: a request the description
does not allow is answered 400 and recorded in `violations`, which tests assert empty.

    fake = FAKES["hetzner"](specs)       # specs: the folder with hetzner/hcloud.json
    monkeypatch.setenv(*fake.env())      # NSELF_HETZNER_API_URL, HCLOUD_TOKEN
    fake.fail("POST", "/servers", 429, retry_after=1)

`base` holds the server, faults, paging, the route table and the contract check; each
provider is one module with its catalog in data/<provider>.yml.
"""
from nself.testing.clouds.aws import AwsFake
from nself.testing.clouds.base import FakeCloud
from nself.testing.clouds.digitalocean import DigitalOceanFake
from nself.testing.clouds.exoscale import ExoscaleFake
from nself.testing.clouds.gcp import GcpFake
from nself.testing.clouds.hetzner import HetznerFake
from nself.testing.clouds.ionos import IonosFake
from nself.testing.clouds.linode import LinodeFake
from nself.testing.clouds.scaleway import ScalewayFake
from nself.testing.clouds.upcloud import UpCloudFake
from nself.testing.clouds.vultr import VultrFake

FAKES: dict[str, type[FakeCloud]] = {fake.name: fake for fake in (
    HetznerFake, DigitalOceanFake, LinodeFake, VultrFake, ExoscaleFake, UpCloudFake, ScalewayFake, IonosFake,
    AwsFake, GcpFake)}

__all__ = ["FAKES", "FakeCloud", "AwsFake", "DigitalOceanFake", "ExoscaleFake", "GcpFake", "HetznerFake", "IonosFake",
           "LinodeFake", "ScalewayFake", "UpCloudFake", "VultrFake"]
