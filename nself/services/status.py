"""`service NAME status`: is the service running, and healthy, in an environment.

Locally the stack runs under podman-compose, which labels each container with its compose
project and service (`com.docker.compose.project`, `com.docker.compose.service`): `podman ps`
finds them, and `podman healthcheck run` runs the service's healthcheck once (without systemd
podman never runs it by itself, design.md "Real parts for deploy and sync"). Other
environments ask their deploy driver (`deploy.check`: over SSH through the executor, or the
Kubernetes API) and keep the rows of this service.
"""
from __future__ import annotations

import json
import subprocess

from nself.errors import Exit, NselfError
from nself.services.catalog import Service

# `podman healthcheck run`: 0 healthy, 1 unhealthy, 125 no healthcheck (or no container)
_HEALTHY, _UNHEALTHY = 0, 1


def _podman(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["podman", *argv], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise NselfError("podman was not found on this machine (needed for local service status)",
                         code=Exit.NOT_FOUND, hint="install podman, or ask another environment with --env") from None
    except subprocess.TimeoutExpired:
        raise NselfError(f"podman did not answer within {timeout:g}s", code=Exit.TIMEOUT,
                         hint="check `podman ps` by hand") from None


def local(project: str, svc: Service, *, timeout: float = 30) -> list[dict]:
    """The containers of `svc` in compose project `project` on this machine:
    [{"name", "state", "running", "healthy" (True, False, or None without a healthcheck)}]."""
    done = _podman(["ps", "-a", "--format", "json",
                    "--filter", f"label=com.docker.compose.project={project}",
                    "--filter", f"label=com.docker.compose.service={svc.compose_name}"], timeout)
    if done.returncode != 0:
        raise NselfError(f"podman ps failed: {done.stderr.strip()[:300]}", code=Exit.RUNTIME,
                         hint="run `podman ps` by hand to see why")
    rows = []
    for box in json.loads(done.stdout or "[]"):
        name = (box.get("Names") or [box.get("Id", "?")[:12]])[0]
        running = box.get("State") == "running"
        rows.append({"name": name, "state": box.get("State"), "running": running,
                     "healthy": _health(name, timeout) if running else False})
    return rows


def _health(name: str, timeout: float) -> bool | None:
    code = _podman(["healthcheck", "run", name], timeout).returncode
    return True if code == _HEALTHY else False if code == _UNHEALTHY else None


def remote(project, svc: Service, out) -> list[dict]:
    """The rows of `deploy.check ENV` for this service (SSH hosts or Kubernetes), and a row
    for each host where nothing is deployed yet."""
    from nself.deploy.drivers import driver_for
    from nself.remote import inventory

    report = driver_for(project, out, inventory.load(project.root)).check()
    return [{"name": row.get("where", ""), "state": row.get("detail", ""), "running": row.get("healthy", False),
             "healthy": row.get("healthy", False)}
            for row in report.get("services", [])
            if row.get("service") == svc.compose_name or row.get("detail") == "nothing deployed"]


def summary(service: Service, env: str, enabled: bool, rows: list[dict]) -> dict:
    """The document `status` prints: running when every container runs, healthy when none
    fails its healthcheck (None when no container has one)."""
    checks = [r["healthy"] for r in rows if r["healthy"] is not None]
    return {"service": service.name, "compose_service": service.compose_name, "environment": env,
            "enabled": enabled, "url": service.url, "containers": rows,
            "running": bool(rows) and all(r["running"] for r in rows),
            "healthy": (all(checks) if checks else None) if rows else False}
