"""The `helm` binary: commands built as plan steps (argv), run by one helm runner.

Builders are pure functions: no process, no network, so `--dry-run` prints exactly what
would run, tests assert the exact argv, and a plan builds on a machine without helm. Secret
values never appear in an argv: they are the step's `data`, handed to helm on stdin
(`--values -`).

Helm 4 renamed `--atomic` to `--rollback-on-failure` (and dropped the old spelling).
Builders always write Helm 3's spelling; `HelmRunner` learns the installed major version
(`helm version --short`) when it runs such a step, and translates. So the version is an
input resolved at run time, in one place, and a plan means the same on either helm.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import replace

from nself.errors import Exit, NselfError
from nself.plan import LocalRunner, Step, StepResult, run

INSTALL_HINT = ("install Helm 3 or 4 (https://helm.sh/docs/intro/install/) and put `helm` on PATH, "
                "or set NSELF_HELM=/path/to/helm")
# Flags Helm 4 spells differently; builders write the left side (Helm 3's).
HELM4_FLAGS = {"--atomic": "--rollback-on-failure"}


def lint(chart: str, values: Sequence[str], strict: bool, secret: str | None) -> Step:
    argv = ["helm", "lint", chart, *_values(values, secret), *(["--strict"] if strict else [])]
    return run(f"lint the chart {chart}", *argv, data=secret)


def template(release: str, chart: str, namespace: str, values: Sequence[str], sets: Iterable[str],
             secret: str | None, output_dir: str | None = None) -> Step:
    argv = ["helm", "template", release, chart, "--namespace", namespace, *_values(values, secret), *_sets(sets)]
    if output_dir:
        argv += ["--output-dir", output_dir]
    return run(f"render {chart} as release {release} in {namespace}", *argv, data=secret)


def install(release: str, chart: str, namespace: str, values: Sequence[str], sets: Iterable[str],
            secret: str | None, *, wait: bool = False, timeout: int | None = None, atomic: bool = False,
            upgrade: bool = False, install: bool = True, reuse_values: bool = False,
            reset_values: bool = False, context: str | None = None) -> Step:
    """`helm install`, or with `upgrade` `helm upgrade [--install]`; `timeout` in seconds."""
    verb = ["upgrade"] + (["--install"] if install else []) if upgrade else ["install"]
    argv = ["helm", *verb, release, chart, "--namespace", namespace, "--create-namespace",
            *_values(values, secret), *_sets(sets)]
    if reuse_values:
        argv.append("--reuse-values")
    if reset_values:
        argv.append("--reset-values")
    if wait or atomic:
        argv.append("--wait")
    if timeout:
        argv += ["--timeout", f"{int(timeout)}s"]
    if atomic:
        argv.append("--atomic")
    argv += _context(context)
    action = "upgrade" if upgrade else "install"
    return run(f"{action} release {release} from {chart} in {namespace}", *argv, data=secret)


def rollback(release: str, namespace: str, revision: int | None = None, context: str | None = None) -> Step:
    argv = ["helm", "rollback", release, *([str(revision)] if revision else []),
            "--namespace", namespace, "--wait", *_context(context)]
    return run(f"roll release {release} back to "
               f"{f'revision {revision}' if revision else 'the previous revision'}", *argv)


def uninstall(release: str, namespace: str, keep_history: bool = False, context: str | None = None) -> Step:
    argv = ["helm", "uninstall", release, "--namespace", namespace, *_context(context)]
    if keep_history:
        argv.append("--keep-history")
    return run(f"uninstall release {release} from {namespace}", *argv)


def list_releases(namespace: str | None, all_releases: bool = False, all_namespaces: bool = False,
                  context: str | None = None) -> Step:
    argv = ["helm", "list", "--output", "json", *_context(context)]
    argv += ["--all-namespaces"] if all_namespaces else ["--namespace", namespace or "default"]
    if all_releases:
        argv.append("--all")
    return run("list releases", *argv)


def status(release: str, namespace: str, context: str | None = None) -> Step:
    return run(f"status of release {release}", "helm", "status", release, "--namespace", namespace,
               "--output", "json", *_context(context))


def history(release: str, namespace: str, limit: int | None = None, context: str | None = None) -> Step:
    argv = ["helm", "history", release, "--namespace", namespace, "--output", "json", *_context(context)]
    if limit:
        argv += ["--max", str(limit)]
    return run(f"history of release {release}", *argv)


def package(chart: str, destination: str, version: str | None = None, app_version: str | None = None) -> Step:
    argv = ["helm", "package", chart, "--destination", destination]
    if version:
        argv += ["--version", version]
    if app_version:
        argv += ["--app-version", app_version]
    return run(f"package {chart} into {destination}", *argv)


def repo(action: str, name: str | None = None, url: str | None = None) -> Step:
    argv = ["helm", "repo", action, *([name] if name else []), *([url] if url else [])]
    if action == "list":
        argv += ["--output", "json"]
    return run(f"helm repo {action} {name or ''}".strip(), *argv)


def push(archive: str, registry: str, plain_http: bool = False) -> Step:
    argv = ["helm", "push", archive, registry, *(["--plain-http"] if plain_http else [])]
    return run(f"push {os.path.basename(archive)} to {registry}", *argv)


class HelmRunner:
    """Runs helm steps: the binary from NSELF_HELM or PATH (found when a step runs, not before),
    Helm 4's flag spellings, helm's failures as nself errors (`helm_error`). Steps that are not
    helm's (an upload) go to the plain `LocalRunner`."""

    def __init__(self, binary: str | None = None, timeout: float = 600):
        self.binary = binary
        self.local = LocalRunner(timeout)
        self._major: int | None = None

    def require(self) -> str:
        binary = self.binary or os.environ.get("NSELF_HELM") or shutil.which("helm")
        if not binary or not os.access(binary, os.X_OK):
            raise NselfError("the helm binary was not found", code=Exit.NOT_FOUND, hint=INSTALL_HINT)
        self.binary = binary
        return binary

    @property
    def major(self) -> int:
        """3 or 4, from `helm version --short` (asked once, only when a flag depends on it)."""
        if self._major is None:
            asked = self.local(run("tell the helm version", self.require(), "version", "--short", timeout=30))
            match = re.match(r"v(\d+)\.", asked.stdout.strip())
            if not asked.ok or not match:
                raise NselfError(f"cannot tell the helm version: {asked.stderr.strip() or asked.stdout}",
                                 code=Exit.NOT_FOUND, hint=INSTALL_HINT)
            self._major = int(match.group(1))
        return self._major

    def argv(self, step: Step) -> tuple[str, ...]:
        """The argv as this machine's helm takes it."""
        words = [self.require(), *step.argv[1:]]
        if any(w in HELM4_FLAGS for w in words[1:]) and self.major >= 4:
            words = [words[0], *(HELM4_FLAGS.get(w, w) for w in words[1:])]
        return tuple(words)

    def __call__(self, step: Step) -> StepResult:
        if step.kind != "run" or step.argv[0] != "helm":
            return self.local(step)
        result = self.local(replace(step, argv=self.argv(step)))
        if not result.ok:
            raise helm_error(step, result.stderr)
        return result


def helm_error(step: Step, stderr: str) -> NselfError:
    """helm's stderr → an exit code: the cluster 9, the chart or values 3, else 1."""
    text = stderr.strip().removeprefix("Error: ")
    lowered = text.lower()
    cluster = ("kubernetes cluster unreachable", "connection refused", "no such host", "unauthorized",
               "forbidden", "release: not found", "has no deployed releases", "no release")
    code = Exit.KUBERNETES if any(s in lowered for s in cluster) else Exit.GENERAL
    if "chart.yaml file is missing" in lowered or "values don't meet the specifications" in lowered \
            or "execution error" in lowered or "parse error" in lowered:
        code = Exit.CONFIG
    hint = {Exit.KUBERNETES: "check the kube context (--context) and that the cluster is reachable",
            Exit.CONFIG: "fix the chart or the values named above (`nself helm.lint`)"}.get(
        code, "run the command printed by --dry-run by hand for details")
    return NselfError(f"helm failed to {step.summary}: {text}", code=code, hint=hint)


def _values(files: Sequence[str], secret: str | None) -> list[str]:
    out = []
    for path in files:
        out += ["--values", path]
    if secret:
        out += ["--values", "-"]
    return out


def _sets(sets: Iterable[str]) -> list[str]:
    out = []
    for item in sets:
        if "=" not in item:
            raise NselfError(f"--set {item!r} is not KEY=VALUE", code=Exit.USAGE,
                             hint="e.g. --set services.hasura.replicas=3")
        out += ["--set", item]
    return out


def _context(context: str | None) -> list[str]:
    return ["--kube-context", context] if context else []
