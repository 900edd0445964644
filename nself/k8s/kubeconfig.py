"""Kubeconfig contexts: list, show, switch, add, delete — edited safely.

Every change keeps the previous file as `<config>.nself-backup` and replaces the
file atomically (temp file in the same folder, then rename), preserving 0600.
Credentials are never printed: listings show names, clusters, users and namespaces.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from nself.errors import Exit, NselfError
from nself.files import write_atomic


def path(explicit: str | None = None) -> Path:
    """--kubeconfig, else the first file of $KUBECONFIG, else ~/.kube/config."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    return Path.home() / ".kube" / "config"


def load(file: Path, *, create: bool = False) -> dict[str, Any]:
    if not file.is_file():
        if create:
            return {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": [],
                    "users": [], "contexts": [], "current-context": ""}
        raise NselfError(f"no kubeconfig at {file}", code=Exit.KUBERNETES,
                         hint="add a context with `nself k8s.context.add`, set KUBECONFIG, "
                              "or fetch one (`nself k8s.k3s.kubeconfig`, a provider's k8s kubeconfig)")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise NselfError(f"{file} is not valid YAML: {exc}", code=Exit.CONFIG,
                         hint="fix it, or restore the backup next to it") from None
    if not isinstance(data, dict):
        raise NselfError(f"{file} is not a kubeconfig", code=Exit.CONFIG, hint="fix or replace it")
    for key in ("clusters", "users", "contexts"):
        data[key] = data.get(key) or []
    return data


def contexts(config: dict) -> list[dict]:
    current = config.get("current-context") or ""
    return [{"name": c["name"], "cluster": c.get("context", {}).get("cluster", ""),
             "user": c.get("context", {}).get("user", ""),
             "namespace": c.get("context", {}).get("namespace", "default"),
             "current": c["name"] == current} for c in config["contexts"]]


def _find(config: dict, name: str, file: Path) -> dict:
    for context in config["contexts"]:
        if context["name"] == name:
            return context
    known = ", ".join(c["name"] for c in config["contexts"]) or "none"
    raise NselfError(f"no context named {name!r} in {file}", code=Exit.KUBERNETES,
                     hint=f"contexts: {known}")


def use(file: Path, name: str) -> dict:
    config = load(file)
    _find(config, name, file)
    config["current-context"] = name
    save(file, config)
    return {"current": name}


def add(file: Path, name: str, server: str, *, token: str | None = None, namespace: str | None = None,
        certificate_authority: str | None = None, insecure: bool = False, use_it: bool = False,
        force: bool = False) -> dict:
    config = load(file, create=True)
    if any(c["name"] == name for c in config["contexts"]) and not force:
        raise NselfError(f"a context named {name!r} already exists in {file}", code=Exit.GENERAL,
                         hint="choose another --name, or pass --force to replace it")
    if not server.startswith(("https://", "http://")):
        raise NselfError(f"server {server!r} is not a URL", code=Exit.USAGE,
                         hint="e.g. --server https://203.0.113.10:6443")
    cluster: dict[str, Any] = {"server": server}
    if certificate_authority:
        cluster["certificate-authority-data"] = _b64_file(certificate_authority)
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    user: dict[str, Any] = {"token": token} if token else {}
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    for key, entry in (("clusters", {"name": name, "cluster": cluster}),
                       ("users", {"name": name, "user": user}),
                       ("contexts", {"name": name, "context": context})):
        config[key] = [e for e in config[key] if e["name"] != name] + [entry]
    if use_it or not config.get("current-context"):
        config["current-context"] = name
    save(file, config)
    return {"added": name, "current": config["current-context"]}


def delete(file: Path, name: str) -> dict:
    """Remove the context, and its cluster and user when no other context uses them."""
    config = load(file)
    context = _find(config, name, file)
    config["contexts"] = [c for c in config["contexts"] if c["name"] != name]
    used = {(c.get("context", {}).get("cluster"), c.get("context", {}).get("user")) for c in config["contexts"]}
    cluster, user = context.get("context", {}).get("cluster"), context.get("context", {}).get("user")
    if cluster not in {u[0] for u in used}:
        config["clusters"] = [c for c in config["clusters"] if c["name"] != cluster]
    if user not in {u[1] for u in used}:
        config["users"] = [u for u in config["users"] if u["name"] != user]
    if config.get("current-context") == name:
        config["current-context"] = ""
    save(file, config)
    return {"deleted": name, "current": config["current-context"]}


def save(file: Path, config: dict) -> None:
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = yaml.safe_dump(config, sort_keys=False)
    if file.is_file():
        backup = file.with_name(file.name + ".nself-backup")
        write_atomic(backup, file.read_bytes(), mode=0o600)
    write_atomic(file, text.encode(), mode=0o600)


def _b64_file(name: str) -> str:
    import base64

    try:
        return base64.b64encode(Path(name).expanduser().read_bytes()).decode()
    except OSError as exc:
        raise NselfError(f"cannot read the certificate authority {name}: {exc.strerror}",
                         code=Exit.CONFIG, hint="pass the path of the cluster's CA certificate") from None


def entries(text: str, context: str, host: str | None = None) -> dict:
    """A kubeconfig's first cluster and user, renamed to `context`; with `host`, a loopback
    server address is pointed at it (k3s writes 127.0.0.1)."""
    config = yaml.safe_load(text) or {}
    cluster = config["clusters"][0]["cluster"]
    if host:
        for local in ("127.0.0.1", "localhost", "0.0.0.0"):
            cluster["server"] = cluster["server"].replace(f"//{local}:", f"//{host}:")
    return {"cluster": {"name": context, "cluster": cluster},
            "user": {"name": context, "user": config["users"][0]["user"]},
            "context": {"name": context, "context": {"cluster": context, "user": context}}}


def merge(file: Path, found: dict, use_it: bool = True) -> None:
    """Put a cluster, user and context (from `entries`) into the kubeconfig, replacing any of the
    same name, and make it current."""
    config = load(file, create=True)
    for key, entry in (("clusters", found["cluster"]), ("users", found["user"]), ("contexts", found["context"])):
        config[key] = [e for e in config[key] if e["name"] != entry["name"]] + [entry]
    if use_it or not config.get("current-context"):
        config["current-context"] = found["context"]["name"]
    save(file, config)
