"""The test hosts' networks (nself/testing/sshd.py): each networked host gets a subnet that no
link on this machine uses, and a host whose sshd never starts leaves nothing behind."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from nself.testing import sshd


def links() -> str:
    return subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout


def namespaces() -> list[str]:
    """This process's test host namespaces (other runs make and remove theirs meanwhile)."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in listing.splitlines() if f"-{os.getpid()}-" in line]


def test_a_subnet_in_use_elsewhere_is_skipped():
    """Another run (or anything) holding 10.213.N on a link: the next host takes another N."""
    first = sshd._free_subnet()
    squatter = f"nsq{first}"
    subprocess.run(["ip", "link", "add", squatter, "type", "veth", "peer", "name", f"{squatter}p"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"10.213.{first}.1/30", "dev", squatter], check=True)
        netns, address = sshd._network("probe")
        try:
            assert address != f"10.213.{first}.2" and address.startswith("10.213.")
            assert netns in namespaces()
            assert sshd._free_subnet() not in (first, int(address.split(".")[2]))
        finally:
            sshd._remove_network(netns, f"nsv{address.split('.')[2]}a")
    finally:
        subprocess.run(["ip", "link", "del", squatter], check=True)
    assert netns not in namespaces()


def test_a_host_whose_sshd_fails_leaves_no_namespace(tmp_path: Path):
    """sshd refuses a config whose paths hold a space (HostKey takes one word): the failed
    host's namespace and veth, and the hosts started before it, are removed."""
    folder = tmp_path / "with space"
    before, taken = namespaces(), sshd._free_subnet()
    with pytest.raises(RuntimeError, match="did not start"):
        sshd.start_hosts(folder, 2, networked=True)
    assert namespaces() == before
    assert sshd._free_subnet() == taken and f"nsv{taken}a" not in links()
