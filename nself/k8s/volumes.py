"""Mounts → PersistentVolumeClaims, ConfigMaps of project files, Secrets, emptyDirs."""
from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from nself.k8s.objects import SOURCE_ANNOTATION, labels, memory, obj, resource_name
from nself.project.model import FileRef, Mount, Project, Service
from nself.project.names import to_dns1035
from nself.project.warnings import Warning

CONFIGMAP_LIMIT = 1024 * 1024   # the API server refuses larger ConfigMaps
DEFAULT_SIZE = "1Gi"


@dataclass
class PodStorage:
    """What one service's mounts add to its pod, and the objects they need."""

    volumes: list[dict] = field(default_factory=list)
    mounts: list[dict] = field(default_factory=list)
    claims: list[dict] = field(default_factory=list)       # StatefulSet volumeClaimTemplates
    objects: list[dict] = field(default_factory=list)       # PVCs, ConfigMaps
    secrets: list[dict] = field(default_factory=list)       # Secret templates (or values)

    def add(self, volume: dict, mount: dict) -> None:
        if not any(v["name"] == volume["name"] for v in self.volumes):
            self.volumes.append(volume)
        self.mounts.append(mount)


class StorageConverter:
    """Per project: remembers which named volumes already have a claim."""

    def __init__(self, project: Project, warnings: list[Warning], include_secrets: bool):
        self.project = project
        self.warnings = warnings
        self.include_secrets = include_secrets
        generate = project.settings.section("kubernetes", "generate") or {}
        self.storage_class = generate.get("storage_class")
        self.default_size = generate.get("storage_size") or DEFAULT_SIZE
        self.claimed: dict[str, str] = {}     # volume → service that owns its PVC

    def pod(self, svc: Service, conf: Mapping, stateful: bool) -> PodStorage:
        out = PodStorage()
        for index, mount in enumerate(svc.volumes):
            {"volume": self._named, "bind": self._bind, "tmpfs": self._tmpfs}.get(
                mount.type, self._unsupported)(svc, conf, mount, index, stateful, out)
        if svc.shm_size:
            out.add({"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": memory(svc.shm_size)}},
                    {"name": "dshm", "mountPath": "/dev/shm"})
        for ref in svc.secrets:
            self._secret(svc, ref, out)
        for ref in svc.configs:
            self._config(svc, ref, out)
        return out

    # -- mounts --------------------------------------------------------------------
    def _named(self, svc, conf, mount: Mount, index, stateful, out: PodStorage) -> None:
        if not mount.source:  # anonymous volume: scratch space for the pod's life
            name = f"scratch-{index}"
            out.add({"name": name, "emptyDir": {}}, _mount(name, mount))
            return
        resource = self.project.volumes.get(mount.source)
        name = resource_name(mount.source)
        size = self._size(conf, mount.source)
        if resource is not None and resource.external:
            claim = to_dns1035(resource.external_name or mount.source)
            self.warnings.append(Warning("external-volume", svc.name, f"volumes.{mount.source}",
                                         f"external volume: expects an existing PVC {claim!r}"))
            out.add({"name": name, "persistentVolumeClaim": {"claimName": claim}}, _mount(name, mount))
            return
        if stateful:
            out.claims.append(self._pvc(svc, name, size, template=True))
            out.mounts.append(_mount(name, mount))
            return
        owner = self.claimed.setdefault(mount.source, svc.name)
        if owner == svc.name:
            if not any(o["metadata"]["name"] == name for o in out.objects):
                out.objects.append(self._pvc(svc, name, size))
        else:
            self.warnings.append(Warning("shared-volume", svc.name, f"volumes.{mount.source}",
                                         f"also mounted by {owner!r}: a ReadWriteOnce claim works "
                                         "only while both pods run on one node"))
        out.add({"name": name, "persistentVolumeClaim": {"claimName": name}}, _mount(name, mount))

    def _bind(self, svc, conf, mount: Mount, index, stateful, out: PodStorage) -> None:
        source = Path(mount.source or "")
        inside = _is_within(source, self.project.root)
        name = resource_name(svc.object_name, source.name or f"bind-{index}")[:63]
        if not inside:
            self.warnings.append(Warning("host-path", svc.name, f"volumes.{mount.target}",
                                         f"binds the node's {source}: a hostPath, only right for "
                                         "node agents (exporters, log shippers)"))
            out.add({"name": f"host-{index}", "hostPath": {"path": str(source)}},
                    _mount(f"host-{index}", mount))
            return
        if source.resolve() == self.project.root:
            self.warnings.append(Warning("project-mount", svc.name, f"volumes.{mount.target}",
                                         "mounts the whole project directory (env files and "
                                         "secrets included): left out; copy what it needs into "
                                         "the image"))
            return
        context = Path(svc.build.context) if svc.build and svc.build.context else None
        if context is not None and source.resolve().is_relative_to(context.resolve()):
            self.warnings.append(Warning("source-mount", svc.name, f"volumes.{mount.target}",
                                         f"{_rel(source, self.project.root)} is inside the build "
                                         "context, a development source mount: left out (the "
                                         "image holds the code)"))
            return
        files = _files(source) if source.is_file() or (source.is_dir() and mount.read_only) else None
        if files is None:
            why = ("does not exist" if not source.exists() else
                   "is a writable directory (a ConfigMap is read-only)")
        elif files is _TOO_BIG:
            why = "is larger than a ConfigMap can hold"
        if files is None or files is _TOO_BIG:
            self.warnings.append(Warning("bind-to-pvc", svc.name, f"volumes.{mount.target}",
                                         f"{_rel(source, self.project.root)} {why}: mounted from a "
                                         "new PersistentVolumeClaim instead"))
            out.objects.append(self._pvc(svc, name, self._size(conf, source.name)))
            out.add({"name": name, "persistentVolumeClaim": {"claimName": name}}, _mount(name, mount))
            return
        data, binary, items = {}, {}, []
        for rel, content in sorted(files.items()):
            key = rel.replace("/", "__")
            try:
                data[key] = content.decode("utf-8")
            except UnicodeDecodeError:
                binary[key] = base64.b64encode(content).decode()
            items.append({"key": key, "path": rel})
        cm = obj("v1", "ConfigMap", name, labels(self.project.name, svc.object_name),
                 annotations={SOURCE_ANNOTATION: _rel(source, self.project.root)})
        if data:
            cm["data"] = data
        if binary:
            cm["binaryData"] = binary
        out.objects.append(cm)
        volume = {"name": name, "configMap": {"name": name}}
        if source.is_file():
            out.add(volume, {"name": name, "mountPath": mount.target, "subPath": source.name,
                             "readOnly": True})
            volume["configMap"]["items"] = [{"key": items[0]["key"], "path": source.name}]
        else:
            if any("/" in i["path"] for i in items):
                volume["configMap"]["items"] = items
            out.add(volume, {"name": name, "mountPath": mount.target, "readOnly": True})

    def _tmpfs(self, svc, conf, mount: Mount, index, stateful, out: PodStorage) -> None:
        empty: dict = {"medium": "Memory"}
        if mount.size:
            empty["sizeLimit"] = memory(mount.size)
        out.add({"name": f"tmpfs-{index}", "emptyDir": empty}, _mount(f"tmpfs-{index}", mount))

    def _unsupported(self, svc, conf, mount: Mount, index, stateful, out) -> None:
        self.warnings.append(Warning("volume-type", svc.name, f"volumes.{mount.target}",
                                     f"{mount.type} mounts have no Kubernetes equivalent; left out"))

    # -- secrets and configs ---------------------------------------------------------
    def _secret(self, svc: Service, ref: FileRef, out: PodStorage) -> None:
        resource = self.project.secrets[ref.source]
        name = resource_name(resource.external_name if resource.external else ref.source)
        if not resource.external and not any(s["metadata"]["name"] == name for s in out.secrets):
            value = ""
            if self.include_secrets:
                value = _read_source(resource, self.project)
            source = (f"file {_rel(Path(resource.file), self.project.root)}" if resource.file
                      else f"variable {resource.environment}")
            out.secrets.append(obj("v1", "Secret", name, labels(self.project.name),
                                   annotations={SOURCE_ANNOTATION: source}, type="Opaque",
                                   stringData={ref.source: value}))
        volume: dict = {"name": f"secret-{name}", "secret": {"secretName": name}}
        if ref.mode is not None:
            volume["secret"]["defaultMode"] = ref.mode
        out.add(volume, {"name": f"secret-{name}", "mountPath": ref.target, "subPath": ref.source,
                         "readOnly": True})

    def _config(self, svc: Service, ref: FileRef, out: PodStorage) -> None:
        resource = self.project.configs[ref.source]
        name = resource_name("config", ref.source)
        if resource.external:
            name = resource_name(resource.external_name or ref.source)
        elif not any(o["metadata"]["name"] == name for o in out.objects):
            out.objects.append(obj("v1", "ConfigMap", name, labels(self.project.name),
                                   data={ref.source: _read_source(resource, self.project)}))
        volume: dict = {"name": name, "configMap": {"name": name}}
        if ref.mode is not None:
            volume["configMap"]["defaultMode"] = ref.mode
        out.add(volume, {"name": name, "mountPath": ref.target, "subPath": ref.source,
                         "readOnly": True})

    # -- helpers -------------------------------------------------------------------------
    def _size(self, conf: Mapping, volume: str) -> str:
        storage = conf.get("storage")
        if isinstance(storage, Mapping):
            return str(storage.get(volume) or storage.get("size") or self.default_size)
        return str(storage or self.default_size)

    def _pvc(self, svc: Service, name: str, size: str, template: bool = False) -> dict:
        spec: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
        if self.storage_class:
            spec["storageClassName"] = self.storage_class
        if template:
            return {"metadata": {"name": name}, "spec": spec}
        return obj("v1", "PersistentVolumeClaim", name, labels(self.project.name, svc.object_name),
                   spec=spec)


def _mount(name: str, mount: Mount) -> dict:
    out: dict = {"name": name, "mountPath": mount.target}
    if mount.subpath:
        out["subPath"] = mount.subpath
    if mount.read_only:
        out["readOnly"] = True
    return out


def _is_within(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(PurePosixPath(os.path.relpath(path, root)))
    except ValueError:
        return str(path)


_TOO_BIG: dict = {}
_NEVER = (".env", ".git", "node_modules", ".nself")   # never copied into a ConfigMap


def _files(source: Path) -> dict[str, bytes]:
    """The files to put in a ConfigMap (`_TOO_BIG` past the API's size limit)."""
    if source.is_file():
        paths = [source]
        base = source.parent
    else:
        paths = sorted(p for p in source.rglob("*") if p.is_file() and not any(
            part.startswith(_NEVER) for part in p.relative_to(source).parts))
        base = source
    out, total = {}, 0
    for path in paths:
        total += path.stat().st_size
        if total > CONFIGMAP_LIMIT:
            return _TOO_BIG
        out[PurePosixPath(path.relative_to(base)).as_posix()] = path.read_bytes()
    return out


def _read_source(resource, project: Project) -> str:
    if resource.content is not None:
        return resource.content
    if resource.file:
        try:
            return Path(resource.file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return ""
    if resource.environment:
        return project.variables.lookup.get(resource.environment, "")
    return ""
