"""The driver of an environment's target (imported lazily: `nself --list` loads none of them)."""
from __future__ import annotations

from nself.deploy.core import Driver
from nself.deploy.targets import resolve


def driver_for(project, out, inventory=None) -> Driver:
    """The Driver for `project.env`: SshDriver (ssh target) or KubeDriver (k8s target)."""
    target = resolve(project, inventory)
    if target.kind == "ssh":
        from nself.deploy.ssh import SshDriver

        return SshDriver(project, target, out)
    from nself.deploy.kube import KubeDriver

    return KubeDriver(project, target, out)
