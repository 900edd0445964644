"""Mounts → PersistentVolumeClaims, ConfigMaps of project files, Secrets, emptyDirs."""
from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from nself.k8s.kinds import image_base
from nself.k8s.settings import GenerateSettings
from nself.k8s.objects import SOURCE_ANNOTATION, labels, memory, obj, resource_name
from nself.project.model import FileRef, Mount, Project, Service
from nself.project.names import to_dns1035
from nself.project.warnings import Warning

CONFIGMAP_LIMIT = 1024 * 1024   # the API server refuses larger ConfigMaps
DEFAULT_SIZE = "1Gi"
RWO, RWX = "ReadWriteOnce", "ReadWriteMany"
# Data directories of images whose first start refuses a non-empty directory: a fresh
# claim holds `lost+found` (ext4), so their data goes into DATA_SUBPATH below it.
_PG, _MY = "/var/lib/postgresql/data", "/var/lib/mysql"
DATA_DIRS = {"postgres": _PG, "postgresql": _PG, "postgis": _PG, "timescaledb": _PG,
             "timescaledb-ha": _PG, "pgvecto-rs": _PG, "mysql": _MY, "mariadb": _MY, "percona": _MY,
             "percona-server": _MY}
DATA_SUBPATH = "data"


@dataclass
class PodStorage:
    """What one service's mounts add to its pod, and the objects they need."""

    volumes: list[dict] = field(default_factory=list)
    mounts: list[dict] = field(default_factory=list)
    claims: list[dict] = field(default_factory=list)       # StatefulSet volumeClaimTemplates
    objects: list[dict] = field(default_factory=list)       # PVCs, ConfigMaps
    secrets: list[dict] = field(default_factory=list)       # Secret templates (or values)
    single_attach: list[str] = field(default_factory=list)  # ReadWriteOnce claims mounted
    shared_with: list[str] = field(default_factory=list)    # services owning claims it shares

    def add(self, volume: dict, mount: dict) -> None:
        if not any(v["name"] == volume["name"] for v in self.volumes):
            self.volumes.append(volume)
        self.mounts.append(mount)


class StorageConverter:
    """Per project: remembers which named volumes already have a claim."""

    def __init__(self, project: Project, settings: GenerateSettings, warnings: list[Warning],
                 include_secrets: bool):
        self.project = project
        self.warnings = warnings
        self.include_secrets = include_secrets
        self.storage_class = settings.storage_class
        self.default_size = settings.storage_size or DEFAULT_SIZE
        self.claimed: dict[str, tuple[str, str]] = {}   # volume or host folder → (claim, owner)
        self.names: dict[str, str] = {}                 # claim name → what it holds

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
        if resource is not None and resource.external:
            claim = to_dns1035(resource.external_name or mount.source)
            self.warnings.append(Warning("external-volume", svc.name, f"volumes.{mount.source}",
                                         f"external volume: expects an existing PVC {claim!r}"))
            out.single_attach.append(claim)   # its access mode is unknown: assume the strict one
            out.add({"name": claim, "persistentVolumeClaim": {"claimName": claim}},
                    _data_mount(claim, mount, svc))
            return
        self._claim(svc, conf, mount, f"volume:{mount.source}", (resource_name(mount.source),),
                    self._size(conf, mount.source), stateful, out)

    def _claim(self, svc, conf, mount: Mount, key: str, names: tuple[str, ...], size: str,
               stateful: bool, out: PodStorage) -> None:
        """A claim for `key` (a named volume or a host folder): one per key, however many
        services mount it; the first service owns it, the others share it."""
        if stateful:
            name = self._name(f"{key}@{svc.name}", names)
            out.claims.append(self._pvc(svc, conf, name, size, template=True))
            out.mounts.append(_data_mount(name, mount, svc))
            return
        name, owner = self.claimed.get(key) or (self._name(key, names), svc.name)
        self.claimed[key] = (name, owner)
        access = _access_mode(conf)
        if owner == svc.name:
            if not any(o["metadata"]["name"] == name for o in out.objects):
                out.objects.append(self._pvc(svc, conf, name, size))
        else:
            out.shared_with.append(owner)
            self.warnings.append(Warning(
                "shared-volume", svc.name, f"volumes.{mount.target}",
                f"shares {owner!r}'s claim {name!r}: its pods are placed on {owner}'s node "
                "(a ReadWriteOnce claim attaches to one node)" if access == RWO else
                f"shares {owner!r}'s ReadWriteMany claim {name!r}"))
        if access == RWO:
            out.single_attach.append(name)
        out.add({"name": name, "persistentVolumeClaim": {"claimName": name}},
                _data_mount(name, mount, svc))

    def _name(self, key: str, candidates: tuple[str, ...]) -> str:
        """The first candidate name no other volume or folder holds (two keys never share
        a claim name: kustomize refuses a tree with duplicate objects)."""
        for name in candidates:
            if self.names.setdefault(name[:63].rstrip("-"), key) == key:
                return name[:63].rstrip("-")
        digest = hashlib.sha256(key.encode()).hexdigest()[:8]
        name = f"{candidates[-1][:54].rstrip('-')}-{digest}"
        self.names[name] = key
        return name

    def _bind(self, svc, conf, mount: Mount, index, stateful, out: PodStorage) -> None:
        source = Path(mount.source or "")
        use, why = bind_use(self.project, svc, mount)
        if use == "host":
            self.warnings.append(Warning("host-path", svc.name, f"volumes.{mount.target}",
                                         f"binds the node's {source}: a hostPath, only right for "
                                         "node agents (exporters, log shippers)"))
            out.add({"name": f"host-{index}", "hostPath": {"path": str(source)}},
                    _mount(f"host-{index}", mount))
            return
        if use == "skip":
            self.warnings.append(Warning(why[0], svc.name, f"volumes.{mount.target}", why[1]))
            return
        if use == "claim":
            rel = _rel(source, self.project.root)
            self.warnings.append(Warning("bind-to-pvc", svc.name, f"volumes.{mount.target}",
                                         f"{rel} {why}: mounted from a new PersistentVolumeClaim "
                                         "instead"))
            names = (resource_name(svc.object_name, source.name or f"bind-{index}"),
                     resource_name(svc.object_name, *PurePosixPath(rel).parts))
            self._claim(svc, conf, mount, f"folder:{rel}", names,
                        self._size(conf, source.name), stateful, out)
            return
        name = resource_name(svc.object_name, source.name or f"bind-{index}")[:63]
        files = _files(source)
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
        """A Memory emptyDir. Its directory is always 0777 (the kubelet's choice; fsGroup adds
        the group): a stricter compose `mode` cannot be carried, and says so."""
        empty: dict = {"medium": "Memory"}
        if mount.size:
            empty["sizeLimit"] = memory(mount.size)
        if mount.mode is not None and mount.mode & 0o777 != 0o777:
            self.warnings.append(Warning(
                "tmpfs-mode", svc.name, f"tmpfs.{mount.target}",
                f"mode {mount.mode:04o} is not carried: a Memory emptyDir is created 0777; "
                "restrict it in the container's command (chmod) or trust the pod's user"))
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

    def _pvc(self, svc: Service, conf: Mapping, name: str, size: str, template: bool = False) -> dict:
        spec: dict = {"accessModes": [_access_mode(conf)], "resources": {"requests": {"storage": size}}}
        if self.storage_class:
            spec["storageClassName"] = self.storage_class
        if template:
            return {"metadata": {"name": name}, "spec": spec}
        return obj("v1", "PersistentVolumeClaim", name, labels(self.project.name, svc.object_name),
                   spec=spec)


def bind_use(project: Project, svc: Service, mount: Mount) -> tuple[str, object]:
    """What a bind mount becomes: ("host", None) a hostPath; ("skip", (code, message));
    ("claim", why) a PersistentVolumeClaim; ("files", None) a ConfigMap of its files."""
    source = Path(mount.source or "")
    if not _is_within(source, project.root):
        return "host", None
    if source.resolve() == project.root:
        return "skip", ("project-mount", "mounts the whole project directory (env files and "
                        "secrets included): left out; copy what it needs into the image")
    context = Path(svc.build.context) if svc.build and svc.build.context else None
    if context is not None and source.resolve().is_relative_to(context.resolve()):
        return "skip", ("source-mount", f"{_rel(source, project.root)} is inside the build "
                        "context, a development source mount: left out (the image holds the code)")
    if not source.exists():
        return "claim", "does not exist"
    if source.is_dir() and not mount.read_only:
        return "claim", "is a writable directory (a ConfigMap is read-only)"
    if _size_of(source) > CONFIGMAP_LIMIT:
        return "claim", "is larger than a ConfigMap can hold"
    return "files", None


def holds_data(project: Project, svc: Service) -> bool:
    """Whether a service keeps data in claims (named volumes, or folders that become claims)."""
    return any(m.type == "volume" and m.source or
               m.type == "bind" and bind_use(project, svc, m)[0] == "claim" for m in svc.volumes)


def _access_mode(conf: Mapping) -> str:
    return RWX if str(conf.get("access_mode") or "").lower() == RWX.lower() else RWO


def _data_mount(name: str, mount: Mount, svc: Service) -> dict:
    """A claim's mount; at an image's data directory the data goes one level down
    (PostgreSQL's initdb and MySQL refuse a directory holding the claim's lost+found)."""
    out = _mount(name, mount)
    data_dir = DATA_DIRS.get(image_base(svc.image))
    if data_dir and mount.target.rstrip("/") == data_dir and "subPath" not in out:
        out["subPath"] = DATA_SUBPATH
    return out


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


_NEVER = (".env", ".git", "node_modules", ".nself")   # never copied into a ConfigMap


def _size_of(source: Path) -> int:
    return sum(p.stat().st_size for p in _paths(source))


def _paths(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted(p for p in source.rglob("*") if p.is_file() and not any(
        part.startswith(_NEVER) for part in p.relative_to(source).parts))


def _files(source: Path) -> dict[str, bytes]:
    """The files to put in a ConfigMap: path relative to the folder (or the file's name) → bytes."""
    base = source.parent if source.is_file() else source
    return {PurePosixPath(path.relative_to(base)).as_posix(): path.read_bytes()
            for path in _paths(source)}


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
