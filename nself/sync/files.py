"""Files between environments with rsync over SSH, the target snapshotted first (pure builders).

An environment's files live under its root: the project folder here for `local`, the
environment's `path` on its first server otherwise (`sync.files.root.<env>` overrides it);
`sync.files.paths` (or `--paths`) are relative to it. The snapshot is rsync's own
`--backup-dir` (`<state>/snapshots/files/<id>/`): every file the sync replaces or deletes is
moved there, so a snapshot costs what changed (a full hard-linked copy — `--link-dest` or
`cp -al` — cost 0.2–0.9 s per 10,000 unchanged files here, more than the whole re-sync may
take); the files it creates are listed from `--itemize-changes`. `sync.rollback` removes
those and moves the kept ones back. `--delete` on a sync only when asked;
`--exclude` patterns come from `sync.exclude` plus the flag. Between two hosts rsync runs on the
target and reads the source through a tunnel of this machine's connection (`relay`).
"""
from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nself.errors import ConfigError, Exit
from nself.plan import LOCAL, Plan, Step, put, shell
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
    """The folders to sync, relative to each environment's root: `--paths` (UsageError, exit 2,
    for a bad one) or `sync.files.paths` (ConfigError, exit 3). An absolute path is refused —
    it would name a different folder on each machine, and stripping its `/` (`/etc` → `etc/`)
    silently synced another one; so is a path that climbs out with `..`."""
    from nself.errors import UsageError

    configured = (project.settings.section("sync", "files", "paths") if project.settings is not None else None)
    given, error = (wanted, UsageError) if wanted else (configured or (), ConfigError)
    bad = [p for p in given if p.startswith("/") or p.startswith("..") or "/../" in f"/{p}/"]
    if bad:
        raise error(f"paths must stay inside the environment's root: {', '.join(bad)}",
                    hint="give paths relative to the project folder (or the environment's `path`), "
                         "like uploads or media/avatars")
    chosen = tuple(p.strip("/") for p in given if p.strip("/"))
    if not chosen:
        raise ConfigError("no paths to sync", hint="set sync.files.paths: [uploads] in nself.yml, or pass --paths")
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


def prune_step(tree: Tree) -> Step:
    q, parent = shlex.quote, posixpath.dirname(tree.snapshot("x"))
    return shell(f"keep the newest {tree.keep} file snapshots",
                 f"ls -1dt {q(parent)}/*/ 2>/dev/null | tail -n +{tree.keep + 1} | xargs -r rm -rf --",
                 on=tree.on, may_fail=True)


def plan(root: Path, src: Tree, dst: Tree, chosen: tuple[str, ...], excludes: tuple[str, ...], delete: bool,
         sync_id: str, servers: Mapping[str, Server], known_hosts: str = "") -> Plan:
    """One rsync per path. `--backup-dir` is the snapshot: what rsync replaces or deletes on the
    target is moved there (a rename, so an unchanged re-sync costs nothing); `--itemize-changes`
    names the files it creates, which a rollback removes. Between two hosts rsync runs on the
    target, through a tunnel to the source (`relay`); `known_hosts` is the project's file then."""
    result = Plan(f"sync files {src.env} → {dst.env}")
    for path in chosen:
        options = ["-a", "--stats", "--itemize-changes", "--mkpath", *(["--delete"] if delete else []),
                   "--backup", f"--backup-dir={posixpath.join(dst.snapshot(sync_id), path)}",
                   *(f"--exclude={x}" for x in excludes)]
        summary = (f"copy {path}/ from {src.env} to {dst.env}, keeping what it replaces"
                   + (" or deletes (--delete)" if delete else ""))
        if src.on != LOCAL and dst.on != LOCAL:
            from nself.sync import relay

            result.add(relay.copy_step(root, servers[src.on], servers[dst.on], servers, options,
                                       posixpath.join(src.root, path) + "/", posixpath.join(dst.root, path) + "/",
                                       sync_id, known_hosts, summary + " (streamed through this machine)", TIMEOUT))
            continue
        argv = ["rsync", *options, *_ssh_option(root, [src, dst], servers),
                _location(root, src, path, servers), _location(root, dst, path, servers)]
        result.add(Step(summary, "run", tuple(argv), LOCAL, error_code=Exit.NETWORK, timeout=TIMEOUT))
    return result.add(prune_step(dst))


def created(stdout: str) -> list[str]:
    """Files rsync created (not replaced), from its --itemize-changes lines (`>f+++++++++ a/b`)."""
    return [line[12:] for line in stdout.splitlines() if len(line) > 12 and line[1:11] == "f+++++++++"]


def rollback_plan(tree: Tree, snapshot: Mapping, created_files: Mapping[str, list[str]]) -> Plan:
    """Remove what the sync created, then move back what it replaced or deleted."""
    q, steps = shlex.quote, []
    for path in snapshot["paths"]:
        folder, kept = posixpath.join(tree.root, path), posixpath.join(snapshot["path"], path)
        if created_files.get(path):
            # the list goes as a file: a host's stdin is fed slowly (Invoke writes it byte by byte)
            listing = posixpath.join(snapshot["path"], f".created-{path.replace('/', '_')}")
            steps += [put(f"list the {len(created_files[path])} file(s) the sync created in {path}/", listing,
                          "\0".join(created_files[path]), on=tree.on, mode=0o600),
                      shell(f"remove the files the sync created in {path}/",
                            f"cd {q(folder)} && xargs -0 -r rm -f -- < {q(listing)} && rm -f {q(listing)}",
                            on=tree.on, timeout=TIMEOUT)]
        steps.append(shell(f"put back what the sync replaced or deleted in {path}/",
                           f"if [ -d {q(kept)} ]; then rsync -a {q(kept + '/')} {q(folder + '/')}; fi",
                           on=tree.on, timeout=TIMEOUT))
    return Plan(f"put {tree.env}'s files back as they were before sync {posixpath.basename(snapshot['path'])}",
                steps)


def transferred(stdout: str) -> int:
    """Files rsync copied, from its --stats."""
    for line in stdout.splitlines():
        if line.startswith("Number of regular files transferred:"):
            return int(line.split(":")[1].replace(",", ""))
    return 0
