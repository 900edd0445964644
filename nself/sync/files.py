"""Files between environments with rsync over SSH, the target snapshotted first (pure builders).

An environment's files live under its root: the project folder here for `local`, the
environment's `path` on its first server otherwise (`sync.files.root.<env>` overrides it);
`sync.files.paths` (or `--paths`) are relative to it. Before anything is overwritten, the
target's paths are copied as an rsync `--link-dest` tree (hard links: cheap, and intact
afterwards because rsync replaces files by rename) into `<state>/snapshots/files/<id>/`;
`sync.rollback` copies it back with `--delete`. `--delete` on a sync only when asked;
`--exclude` patterns come from `sync.exclude` plus the flag. Between two hosts the files
would have to pass through here: not built (pull, then push).
"""
from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nself.errors import ConfigError, Exit
from nself.plan import LOCAL, Plan, Step, shell
from nself.remote.inventory import Server
from nself.sync.stream import ssh_argv

TIMEOUT = 6 * 3600
DEFAULT_KEEP = 5


@dataclass(frozen=True)
class Tree:
    """One environment's files: `root` on machine `on`; `state` holds its snapshots."""

    env: str
    on: str
    root: str
    state: str
    keep: int = DEFAULT_KEEP

    def snapshot(self, sync_id: str) -> str:
        return posixpath.join(self.state, "snapshots", "files", sync_id)


def resolve(project, inventory: Mapping) -> Tree:
    """The files root of `project.env` (ConfigError naming the key when there is none)."""
    settings = project.settings
    files = (settings.section("sync", "files") if settings is not None else None) or {}
    keep = int(files.get("keep") or DEFAULT_KEEP)
    override = (files.get("root") or {}).get(project.env)
    if project.env == "local":
        root = override or str(project.root)
        return Tree("local", LOCAL, root, str(project.root / ".nself" / "state"), keep)
    from nself.deploy.targets import SshTarget, resolve as target

    chosen = target(project, inventory)
    if not isinstance(chosen, SshTarget):
        raise ConfigError(f"{project.env} runs on Kubernetes: syncing files into pods is not built yet",
                          hint="sync files with a host environment, or copy them with `k8s.exec`")
    root = override or chosen.path
    return Tree(project.env, chosen.servers[0], root, posixpath.join(chosen.path, ".nself"), keep)


def paths(project, wanted) -> tuple[str, ...]:
    configured = (project.settings.section("sync", "files", "paths") if project.settings is not None else None)
    chosen = tuple(p.strip("/") for p in (wanted or configured or ()) if p.strip("/"))
    if not chosen:
        raise ConfigError("no paths to sync", hint="set sync.files.paths: [uploads] in nself.yml, or pass --paths")
    bad = [p for p in chosen if p.startswith("..") or "/../" in f"/{p}/"]
    if bad:
        raise ConfigError(f"paths must stay inside the project: {', '.join(bad)}", hint="use paths like uploads/")
    return chosen


def _location(root: Path, tree: Tree, path: str, servers: Mapping[str, Server]) -> str:
    full = posixpath.join(tree.root, path) + "/"
    if tree.on == LOCAL:
        return full
    server = servers[tree.on]
    return f"{server.user}@{server.host}:{full}"


def _ssh_option(root: Path, trees: list[Tree], servers: Mapping[str, Server]) -> list[str]:
    remote = [t for t in trees if t.on != LOCAL]
    if not remote:
        return []
    server = servers[remote[0].on]
    argv = ssh_argv(root, server, servers)[:-1]            # the host comes from the location
    options = ["-e", shlex.join(argv)]
    return [*options, "--rsync-path", "sudo -n rsync"] if server.sudo else options


def snapshot_steps(tree: Tree, chosen: tuple[str, ...], sync_id: str) -> list[Step]:
    """A hard-linked copy of the target's paths (empty folders for paths it lacks), then prune."""
    q, folder = shlex.quote, tree.snapshot(sync_id)
    steps = []
    for path in chosen:
        source, copy = posixpath.join(tree.root, path), posixpath.join(folder, path)
        steps.append(shell(f"snapshot {tree.env}'s {path}/ (hard links)",
                           f"mkdir -p {q(copy)} && if [ -d {q(source)} ]; then rsync -a --link-dest={q(source)} "
                           f"{q(source + '/')} {q(copy + '/')}; fi", on=tree.on, timeout=TIMEOUT))
    parent = posixpath.dirname(folder)
    steps.append(shell(f"keep the newest {tree.keep} file snapshots",
                       f"ls -1dt {q(parent)}/*/ 2>/dev/null | tail -n +{tree.keep + 1} | xargs -r rm -rf --",
                       on=tree.on, may_fail=True))
    return steps


def plan(root: Path, src: Tree, dst: Tree, chosen: tuple[str, ...], excludes: tuple[str, ...], delete: bool,
         sync_id: str, servers: Mapping[str, Server]) -> tuple[Plan, Plan]:
    """(snapshot, transfer) plans of one files sync."""
    if src.on != LOCAL and dst.on != LOCAL:
        from nself.deploy.core import NotSupported

        raise NotSupported("syncing files between two hosts is not built yet",
                           f"pull them here, then push: `nself sync.files {src.env} local` and "
                           f"`nself sync.files local {dst.env}`")
    transfer = Plan(f"sync files {src.env} → {dst.env}")
    for path in chosen:
        argv = ["rsync", "-a", "--stats", "--mkpath", *(["--delete"] if delete else []),
                *(f"--exclude={x}" for x in excludes), *_ssh_option(root, [src, dst], servers),
                _location(root, src, path, servers), _location(root, dst, path, servers)]
        transfer.add(Step(f"copy {path}/ from {src.env} to {dst.env}" + (" (deleting what the source lacks)"
                                                                           if delete else ""),
                          "run", tuple(argv), LOCAL, error_code=Exit.NETWORK, timeout=TIMEOUT))
    return Plan(f"snapshot {dst.env}'s files", snapshot_steps(dst, chosen, sync_id)), transfer


def rollback_plan(tree: Tree, snapshot: str, chosen: list[str]) -> Plan:
    q = shlex.quote
    return Plan(f"put {tree.env}'s files back from {posixpath.basename(snapshot)}", [
        shell(f"restore {path}/ from the snapshot",
              f"mkdir -p {q(posixpath.join(tree.root, path))} && rsync -a --delete "
              f"{q(posixpath.join(snapshot, path) + '/')} {q(posixpath.join(tree.root, path) + '/')}",
              on=tree.on, timeout=TIMEOUT) for path in chosen])


def transferred(stdout: str) -> int:
    """Files rsync copied, from its --stats."""
    for line in stdout.splitlines():
        if line.startswith("Number of regular files transferred:"):
            return int(line.split(":")[1].replace(",", ""))
    return 0
