"""deploy.build: the release's images, built locally with the target's runtime.

Every service with `build:` becomes `<repository>:<release id>`, where the repository is
`<deploy.registry>/<project>/<service>` when a registry is configured, else `<service image
name or project-service>` (ssh targets then stream the image to their hosts). After a push the
image is recorded by digest (`repository@sha256:…`, from `--digestfile`), so a promote deploys
exactly the bytes that were tested. Builders are pure; `record()` keeps what a build produced
in `.nself/state/images/<release>.json` for later deploys and promotes.
"""
from __future__ import annotations

import json
import posixpath
from pathlib import Path

from nself.errors import Exit
from nself.plan import Plan, Step, run

IMAGES_DIR = Path(".nself") / "state" / "images"


def repository(project, service, registry: str | None) -> str:
    """Where the service's release images live (no tag)."""
    if registry:
        return f"{registry.rstrip('/')}/{project.name}/{service.name}"
    if service.image:
        name = service.image.rsplit("@", 1)[0]
        last = name.rsplit("/", 1)[-1]
        return name.rsplit(":", 1)[0] if ":" in last else name
    return f"{project.name}-{service.name}"


def built_services(project, only: tuple[str, ...] = ()) -> list:
    services = [s for s in project.services.values() if s.build is not None]
    if only:
        services = [project.service(name) for name in only]
        without = [s.name for s in services if s.build is None]
        if without:
            from nself.errors import UsageError

            raise UsageError(f"{', '.join(without)} has no `build:` in the compose file",
                             hint="deploy.build builds only services with build:; others use their image")
    return sorted(services, key=lambda s: s.name)


def plan(project, release: str, runtime: str, registry: str | None, only: tuple[str, ...] = (),
         state: Path | None = None) -> Plan:
    """Build (and push, with a registry) every service with `build:`. `state` is the folder
    where push digests land (a digest file per service)."""
    steps: list[Step] = []
    for service in built_services(project, only):
        ref = f"{repository(project, service, registry)}:{release}"
        build = service.build
        context = str((project.root / (build.context or ".")).resolve())
        argv = [runtime, "build", "--tag", ref]
        if build.dockerfile:
            argv += ["--file", posixpath.join(context, build.dockerfile)]
        if build.target:
            argv += ["--target", build.target]
        for key, value in sorted(build.args.items()):
            argv += ["--build-arg", key if value is None else f"{key}={value}"]
        steps.append(run(f"build {service.name} as {ref}", *argv, context, error_code=Exit.RUNTIME,
                         timeout=1800))
        if registry:
            push = [runtime, "push", *(["--digestfile", str(state / f"{service.name}.digest")] if state else []),
                    *(["--tls-verify=false"] if runtime == "podman" and _loopback(registry) else []), ref]
            steps.append(run(f"push {ref}", *push, error_code=Exit.RUNTIME, timeout=1800))
    return Plan(f"build the images of release {release} with {runtime}", steps)


def _loopback(registry: str) -> bool:
    host = registry.split("/", 1)[0].rsplit(":", 1)[0]
    return host in ("localhost", "127.0.0.1", "[::1]")


def images(project, release: str, registry: str | None, state: Path | None = None) -> dict[str, str]:
    """service → reference of what `plan` built: by digest where a push wrote one."""
    out = {}
    for service in built_services(project):
        repo = repository(project, service, registry)
        digest_file = state / f"{service.name}.digest" if state else None
        digest = digest_file.read_text().strip() if digest_file and digest_file.is_file() else ""
        out[service.name] = f"{repo}@{digest}" if digest.startswith("sha256:") else f"{repo}:{release}"
    return out


def record(root: Path, release: str, refs: dict[str, str]) -> Path:
    from nself.files import write_atomic

    path = root / IMAGES_DIR / f"{release}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(refs, indent=2, sort_keys=True) + "\n").encode())
    return path


def recorded(root: Path, release: str) -> dict[str, str]:
    path = root / IMAGES_DIR / f"{release}.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
