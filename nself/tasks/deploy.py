"""deploy: environments as targets — build, preview, deploy, check, roll back, promote.

An environment's target comes from nself.yml (`environments.<env>.target`: ssh hosts running
compose behind nginx, or a Kubernetes cluster); see docs/deploy.md. Every task that changes
something builds a plan first: `--dry-run` prints it, `--json` emits it.
"""
from __future__ import annotations

from invoke import Collection, task

from nself import runtime
from nself.tasks import bluegreen, canary

_ENV = "the environment: staging, production (prod), or one declared in nself.yml"
_RUN = {"release": "release id (default: the git short sha, -dirty when the tree is dirty)",
        "timeout": "seconds the new release has to become healthy (default deploy.timeout, else 300)",
        "service": "only this service (repeatable)", "parallel": "ssh: hosts at once (default 8)",
        "keep_going": "go on after a failed host or environment (healthy ones keep the new release)",
        "skip_build": "do not build images; deploy what the last build recorded"}


def _driver(c, environment: str | None):
    from nself.deploy.drivers import driver_for
    from nself.remote import inventory

    project = runtime.load(c, env=environment or None)
    return driver_for(project, runtime.output(c), inventory.load(project.root))


def _environments(c, environment: str, targets: str | None, all_envs: bool) -> list[str]:
    """The environments to deploy, in order (aliases resolved)."""
    from nself.errors import UsageError
    from nself.project import find_root, settings
    from nself.project.envfiles import canonical_env

    root = runtime.options(c).root or find_root()
    declared = settings.load(root).environments() if root else {}
    if all_envs:
        names = [n for n, spec in declared.items() if spec.get("target") or spec.get("context")
                 or spec.get("hosts") or spec.get("roles")]
        if not names:
            raise UsageError("--all-envs: no environment in nself.yml has a deploy target",
                             hint="set environments.<env>.hosts/roles (ssh) or .context (k8s); see docs/deploy.md")
    else:
        names = [n for n in (targets or environment or runtime.options(c).env or "").split(",") if n]
    if not names:
        raise UsageError("which environment?", hint="e.g. `nself deploy.to staging`, or --targets staging,prod")
    return [canonical_env(n, declared) for n in names]


def _options(c, driver, release, timeout, service, parallel, keep_going, skip_build):
    from nself.deploy import build
    from nself.deploy.core import DeployOptions
    from nself.deploy.release import Release, release_id

    project = driver.project
    rid = release or release_id(project.root)
    images = build.recorded(project.root, rid) if skip_build else {}
    default_timeout = project.settings.section("deploy", "timeout") if project.settings else None
    timeout, parallel = _run_numbers(timeout, parallel)
    return DeployOptions(Release(rid, images), timeout=timeout or float(default_timeout or 300),
                         keep_going=keep_going, parallel=parallel, services=tuple(service or ()))


def _run_numbers(timeout, parallel) -> tuple[float | None, int]:
    """--timeout (None when not given: the caller's default applies) and --parallel, checked."""
    return (None if timeout is None else _at_least_one("--timeout", timeout, float),
            _at_least_one("--parallel", parallel, int))


def _at_least_one(flag: str, value, kind: type):
    """`value` of a numeric flag as `kind`, at least 1 (the floor nself.yml keeps for
    deploy.timeout); raises UsageError (exit 2) before anything runs otherwise."""
    from nself.errors import UsageError

    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not number >= 1:            # `not >=` also refuses nan
        kind_name = "a whole number" if kind is int else "a number"
        raise UsageError(f"{flag} {value}: must be {kind_name} of at least 1", hint=f"e.g. {flag} 30")
    return number


def _build_plan(c, driver, options, only=()):
    """The build steps of a release (none when no service has `build:`)."""
    from nself.deploy import build

    project = driver.project
    registry = project.settings.section("deploy", "registry") if project.settings else None
    state = project.root / build.IMAGES_DIR / options.release.id
    return build.plan(project, options.release.id, _runtime(driver), registry, only, state), registry, state


def _runtime(driver) -> str:
    import shutil

    return getattr(driver.target, "runtime", None) or ("podman" if shutil.which("podman") else "docker")


def _planned_images(driver, options, only=()):
    """options whose release names the images the build steps will produce (by tag: a push's
    digest is not known before it runs), so a dry run plans the deploy of what it would build
    (with --service, only those services' images, as the real run records)."""
    from nself.deploy import build

    project = driver.project
    registry = project.settings.section("deploy", "registry") if project.settings else None
    planned = build.images(project, options.release.id, registry)
    return _with_images(options, {name: ref for name, ref in planned.items() if not only or name in only})


def _with_images(options, refs: dict[str, str]):
    """options whose release also names `refs` (service → image reference)."""
    import dataclasses

    return dataclasses.replace(options, release=dataclasses.replace(
        options.release, images={**options.release.images, **refs}))


def _run_build(c, driver, options, only=()):
    """Build and record the release's images; returns options with them."""
    from nself.deploy import build
    from nself.plan import LocalRunner

    plan, registry, state = _build_plan(c, driver, options, only)
    if not plan.steps:
        return options
    state.mkdir(parents=True, exist_ok=True)
    out = runtime.output(c)
    plan.run(LocalRunner(echo=out.verbose), on_step=lambda s: out.say(f"{s.summary} ..."))
    built = build.images(driver.project, options.release.id, registry, state)
    refs = {**build.recorded(driver.project.root, options.release.id),
            **{name: ref for name, ref in built.items() if not only or name in only}}
    build.record(driver.project.root, options.release.id, refs)
    return _with_images(options, refs)


def _deploy_one(c, environment, release, timeout, service, parallel, keep_going, skip_build, plans):
    from nself.deploy.core import deploy, full_plan
    from nself.plan import Plan

    driver = _driver(c, environment)
    options = _options(c, driver, release, timeout, service, parallel, keep_going, skip_build)
    only = _built(driver, options.services)
    builds = not skip_build and (only or not options.services)   # --service S: only S's own builds
    if runtime.options(c).dry_run:
        build_plan = _build_plan(c, driver, options, only)[0] if builds else Plan("build", [])
        if build_plan.steps:
            options = _planned_images(driver, options, only)
        plan = full_plan(driver, options)
        plans.append(Plan(plan.title, [*build_plan.steps, *plan.steps]))
        return None
    if builds:
        options = _run_build(c, driver, options, only)
    out = runtime.output(c)
    strategy = _strategy(driver)
    out.say(f"deploying release {options.release.id} to {driver.target.describe()} ({strategy})")
    if strategy == "rolling":
        return deploy(driver, options, echo=out.say)
    return _progressive(driver, options, strategy, out)


def _built(driver, services: tuple[str, ...]) -> tuple[str, ...]:
    """--service S: those of S that have `build:`, the only ones to build (() without --service: all)."""
    names = [driver.project.service(name).name for name in services]
    return tuple(n for n in names if driver.project.services[n].build is not None)


def _strategy(driver) -> str:
    """environments.<env>.strategy, else deploy.strategy, else rolling (docs/deploy.md)."""
    settings = driver.project.settings
    if settings is None:
        return "rolling"
    return settings.env_target(driver.project.env).get("strategy") or settings.section("deploy", "strategy") \
        or "rolling"


def _progressive(driver, options, strategy, out) -> dict:
    """deploy.to with a canary or blue-green strategy: starts it; the record says where it stopped."""
    import dataclasses

    from nself.deploy import bluegreen, progressive
    from nself.tasks.canary import _fail_if_aborted, _limits, _schedule

    options = dataclasses.replace(options, strategy=strategy)
    if options.services and driver.kind == "ssh":
        from nself.deploy.core import NotSupported

        raise NotSupported(f"--service with strategy {strategy} on an ssh target: a canary or blue-green release "
                           "moves every service together", "deploy every service (leave out --service), or use "
                           "strategy rolling for this deploy (`environments.<env>.strategy`)")
    if strategy == "blue-green":
        state = bluegreen.deploy(driver, options, echo=out.say)
    else:
        configured = driver.project.settings.section("deploy", "canary") or {}
        state = progressive.start(driver, options, _schedule(driver, None, None, None, None),
                                  auto=bool(configured.get("auto")), limits=_limits(driver, None), echo=out.say)
        _fail_if_aborted(state)
    return {"env": state.env, "from": state.stable, "to": state.release, "strategy": strategy,
            "result": state.phase, "weight": state.weight}


def _deploy_envs(c, envs, release, timeout, service, parallel, keep_going, skip_build):
    from nself.errors import NselfError
    from nself.plan import emit

    out, plans, records, failed = runtime.output(c), [], [], []
    for env in envs:
        try:
            record = _deploy_one(c, env, release, timeout, service, parallel, keep_going, skip_build, plans)
        except NselfError as exc:
            if len(envs) == 1:
                raise
            records.append({"env": env, "result": "failed", "error": exc.message, "code": exc.code})
            failed.append(env)
            out.error(f"{env}: {exc.message}")
            if not keep_going:
                break
            continue
        if record:
            records.append(record)
    if runtime.options(c).dry_run:
        emit(out, plans if len(plans) > 1 else plans[0])
        return
    _summary(out, records, envs)
    if failed:
        raise NselfError(f"the deploy failed in {', '.join(failed)}", details=[r.get("error", "") for r in records
                                                                              if r.get("result") == "failed"],
                         hint="see the output above; nothing after the first failure ran" if not keep_going
                         else "see the output above", reported=True)


def _summary(out, records, envs):
    document = records[0] if len(envs) == 1 and records else {"deploys": records}
    out.emit(document, render=lambda d: out.table(
        ["environment", "from", "to", "result", "seconds"],
        [[r["env"], r.get("from") or "-", r.get("to") or "-", r["result"], r.get("duration", "")] for r in records]))


@task(positional=["environment"], iterable=["service"], help={"environment": _ENV, **_RUN})
def to(c, environment, release=None, timeout=None, service=None, parallel=8, keep_going=False, skip_build=False):
    """Deploy the current source to an environment."""
    _deploy_envs(c, _environments(c, environment, None, False), release, timeout, service, parallel,
                 keep_going, skip_build)


@task(iterable=["service"], help={"environment": _ENV, "targets": "environments, comma separated, deployed in order",
                                  "all_envs": "every environment of nself.yml that has a deploy target", **_RUN})
def envs(c, environment=None, targets=None, all_envs=False, release=None, timeout=None, service=None, parallel=8,
         keep_going=False, skip_build=False):
    """Deploy to several environments in order (--targets a,b or --all-envs)."""
    _deploy_envs(c, _environments(c, environment or "", targets, all_envs), release, timeout, service, parallel,
                 keep_going, skip_build)


envs.optional_positionals = ("environment",)


@task(iterable=["service"], help=_RUN)
def staging(c, release=None, timeout=None, service=None, parallel=8, keep_going=False, skip_build=False):
    """Deploy the current source to staging."""
    _deploy_envs(c, ["staging"], release, timeout, service, parallel, keep_going, skip_build)


@task(aliases=["production"], iterable=["service"], help=_RUN)
def prod(c, release=None, timeout=None, service=None, parallel=8, keep_going=False, skip_build=False):
    """Deploy the current source to production."""
    _deploy_envs(c, ["production"], release, timeout, service, parallel, keep_going, skip_build)


@task(positional=["environment"], iterable=["service"],
      help={"environment": _ENV, "service": "only this service (repeatable)", "release": _RUN["release"]})
def build(c, environment, service=None, release=None):
    """Build the release's images with the target's runtime (and push them)."""
    from nself.plan import emit

    driver = _driver(c, environment)
    options = _options(c, driver, release, None, (), 8, False, False)
    if runtime.options(c).dry_run:
        emit(runtime.output(c), _build_plan(c, driver, options, tuple(service or ()))[0])
        return
    images = _run_build(c, driver, options, tuple(service or ())).release.images
    out = runtime.output(c)
    out.emit({"release": options.release.id, "images": dict(images)}, render=lambda d: out.table(
        ["service", "image"], sorted(d["images"].items()), title=f"release {d['release']}")
        if d["images"] else out.say("no service has `build:`; nothing to build"))


@task(positional=["environment"], help={"environment": _ENV, "diff": "show a per-object / per-file diff",
                                        "release": _RUN["release"]})
def preview(c, environment, diff=False, release=None):
    """Show what a deploy would change in an environment (changes nothing)."""
    driver = _driver(c, environment)
    options = _options(c, driver, release, None, (), 8, False, True)
    out = runtime.output(c)
    report = driver.preview(options, diff)
    out.emit(report, render=lambda d: [out.say(line) for line in d.get("lines", [])] or out.say(
        "no changes" if not d.get("changes") else f"{len(d['changes'])} change(s)"))


@task(positional=["environment"], help={"environment": _ENV})
def status(c, environment):
    """Show the live release and the state of every host or workload."""
    driver = _driver(c, environment)
    out = runtime.output(c)
    report = driver.status()
    out.emit(report, render=lambda d: _render_status(out, d))


def _render_status(out, report: dict) -> None:
    out.say(f"{report.get('env')}: release {report.get('release') or '(none)'}")
    rows = report.get("rows") or []
    if rows:
        out.table(list(rows[0]), [list(r.values()) for r in rows])


@task(positional=["environment"], help={"environment": _ENV, "limit": "at most this many, newest last"})
def history(c, environment, limit=20):
    """List the environment's deploys: who, from → to, result, duration."""
    from nself.deploy.core import read_local
    from nself.errors import NselfError

    driver = _driver(c, environment)
    try:
        records = driver.history()
    except NselfError as exc:
        runtime.output(c).warn(f"{exc.message}; showing this machine's log (.nself/state/deploy.log)")
        records = read_local(driver.project.root, driver.project.env)
    records = records[-int(limit):]
    out = runtime.output(c)
    out.emit({"env": driver.project.env, "deploys": records}, render=lambda d: out.table(
        ["started", "who", "strategy", "from", "to", "result", "seconds"],
        [[r.get("started"), r.get("who"), r.get("strategy"), r.get("from") or "-", r.get("to") or "-",
          r.get("result"), r.get("duration")] for r in d["deploys"]]) if d["deploys"] else out.say("no deploys yet"))


@task(positional=["environment"], help={"environment": _ENV, "service": "only this service",
                                        "follow": "keep streaming", "tail": "lines from the end (default 200)"})
def logs(c, environment, service=None, follow=False, tail=200):
    """Show the logs of an environment's services."""
    _driver(c, environment).logs(service, follow, int(tail))


logs.optional_positionals = ("service",)


@task(positional=["environment"], help={"environment": _ENV})
def check(c, environment):
    """Check the health of every service in an environment."""
    from nself.errors import NselfError

    driver = _driver(c, environment)
    out = runtime.output(c)
    report = driver.check()
    out.emit(report, render=lambda d: out.table(["service", "where", "healthy", "detail"], [
        [s.get("service"), s.get("where", ""), "yes" if s.get("healthy") else "NO", s.get("detail", "")]
        for s in d.get("services", [])]))
    if not report.get("healthy"):
        bad = sorted({s.get("service") for s in report.get("services", []) if not s.get("healthy")})
        raise NselfError(f"{driver.project.env}: not healthy: {', '.join(bad)}", reported=True,
                         hint=f"`nself deploy.logs {driver.project.env} SERVICE`, or `nself deploy.rollback "
                              f"{driver.project.env}`")


@task(positional=["environment"], help={"environment": _ENV, "to": "the release to go back to (default: the previous)"})
def rollback(c, environment, to=None):
    """Put the previous release (or --to RELEASE) back in an environment."""
    from nself.deploy.core import rollback as run_rollback
    from nself.deploy.core import rollback_plan
    from nself.plan import emit

    driver = _driver(c, environment)
    out = runtime.output(c)
    if runtime.options(c).dry_run:
        emit(out, rollback_plan(driver, to))
        return
    record = run_rollback(driver, to, echo=out.say)
    out.emit(record, render=lambda d: out.say(f"{d['env']}: {d.get('from')} → {d.get('to')} (rolled back)"))


@task(help={
    "source": "environment whose release is promoted (default staging)",
    "destination": "environment that receives it (default production)",
    "skip_tests": "promote even if the source's last deploy is not healthy",
    **{k: _RUN[k] for k in ("timeout", "parallel", "keep_going")}})
def promote(c, source=None, destination=None, skip_tests=False, timeout=None, parallel=8, keep_going=False):
    """Deploy the release one environment runs to the next (same digests)."""
    from nself.deploy.core import DeployOptions, deploy
    from nself.deploy.promote import promoted_release

    timeout, parallel = _run_numbers(timeout, parallel)
    src, dest = _environments(c, source or "staging", None, False)[0], \
        _environments(c, destination or "production", None, False)[0]
    source_driver, driver = _driver(c, src), _driver(c, dest)
    release = promoted_release(source_driver, skip_tests)
    options = DeployOptions(release, timeout=timeout or 300.0, keep_going=keep_going, parallel=parallel)
    out = runtime.output(c)
    if runtime.options(c).dry_run:
        from nself.deploy.core import full_plan
        from nself.plan import emit

        emit(out, full_plan(driver, options))
        return
    out.say(f"promoting release {release.id} from {src} to {dest}")
    record = deploy(driver, options, echo=out.say)
    _summary(out, [record], [dest])


promote.optional_positionals = ("source", "destination")


@task(positional=["url"], help={"url": "where to POST the record (http or https)",
                                "environment": "whose last deploy to send (default: --env)",
                                "secret_env": "variable holding the signing secret (default deploy.webhook_secret_env, "
                                              "else NSELF_WEBHOOK_SECRET)"})
def webhook(c, url, environment=None, secret_env=None):
    """POST the last deploy record as JSON, signed with HMAC-SHA256."""
    import os

    from nself.deploy import webhook as hook
    from nself.deploy.core import read_local
    from nself.errors import ConfigError, NselfError

    project = runtime.load(c, env=environment or None)
    name = secret_env or (project.settings.section("deploy", "webhook_secret_env") if project.settings else None) \
        or "NSELF_WEBHOOK_SECRET"
    secret = os.environ.get(name) or (project.variables.values.get(name) if project.variables else None)
    if not secret:
        raise ConfigError(f"the webhook secret variable {name} is not set",
                          hint=f"export {name}=... (or put it in .env.secrets); it signs the request")
    records = read_local(project.root, project.env)
    if not records:
        raise NselfError(f"{project.env} has no deploy on record to send",
                         hint=f"deploy first: `nself deploy.to {project.env}`")
    out = runtime.output(c)
    if runtime.options(c).dry_run:
        out.emit({"plan": {"title": "send the deploy webhook", "steps": [
            {"summary": f"POST the last {project.env} deploy record", "kind": "http", "on": "local",
             "method": "POST", "url": hook.shown_url(url)}]}},
            render=lambda d: out.say(f"would POST the last record to {hook.shown_url(url)}"))
        return
    status_code = hook.send(url, records[-1], secret)
    out.emit({"url": hook.shown_url(url), "status": status_code, "record": records[-1]},
             render=lambda d: out.say(f"sent the {project.env} record of {records[-1].get('to')} → {status_code}"))


@task(positional=["environment"], help={"environment": _ENV})
def unlock(c, environment):
    """Remove a stale deploy lock from an environment (asks unless --yes)."""
    driver = _driver(c, environment)
    out = runtime.output(c)
    lock = driver.lock()
    holder = lock.read()
    if holder is None:
        out.emit({"env": driver.project.env, "unlocked": False},
                 render=lambda d: out.say(f"{d['env']} is not locked"))
        return
    if not runtime.confirm(c, f"Remove the lock on {driver.project.env} held by {holder.get('who')} "
                              f"since {holder.get('since')}?"):
        out.say("left as it is")
        return
    lock.clear()
    out.emit({"env": driver.project.env, "unlocked": True, "holder": holder},
             render=lambda d: out.say(f"{d['env']}: removed the lock of {holder.get('who')}"))


ns = Collection("deploy", to, staging, prod, build, preview, status, history, logs, check, rollback, promote,
                webhook, unlock)
ns.add_task(envs, default=True)
ns.add_collection(canary.ns)
ns.add_collection(bluegreen.ns)
ns.configure({"deploy": {}})
