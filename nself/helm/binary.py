"""The `helm` binary: commands built as data (argv lists), run by one small runner.

Builders are pure and never run anything, so `--dry-run` prints exactly what
would run and tests assert the exact command lines. Secret values never appear
in an argv: they reach helm on stdin (`--values -`).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from nself.errors import Exit, NselfError

INSTALL_HINT = ("install Helm 3 or 4 (https://helm.sh/docs/intro/install/) and put `helm` on PATH, "
                "or set NSELF_HELM=/path/to/helm")


@dataclass(frozen=True)
class Command:
    """One helm invocation: argv, what goes to stdin (secret values), a sentence."""

    argv: tuple[str, ...]
    summary: str
    stdin: str | None = field(default=None, repr=False)

    def display(self) -> str:
        text = " ".join(_quote(a) for a in self.argv)
        return text + (" < (secret values from the env files)" if self.stdin else "")


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


class Helm:
    def __init__(self, binary: str | None = None):
        self.binary = binary or os.environ.get("NSELF_HELM") or shutil.which("helm")
        self._major: int | None = None

    def require(self) -> str:
        if not self.binary or not os.access(self.binary, os.X_OK):
            raise NselfError("the helm binary was not found", code=Exit.NOT_FOUND, hint=INSTALL_HINT)
        return self.binary

    @property
    def major(self) -> int:
        """3 or 4, from `helm version --short` (flags differ between them)."""
        if self._major is None:
            out = subprocess.run([self.require(), "version", "--short"], capture_output=True,
                                 text=True, timeout=30)
            match = re.match(r"v(\d+)\.", out.stdout.strip())
            if out.returncode or not match:
                raise NselfError(f"cannot tell the helm version: {out.stderr.strip() or out.stdout}",
                                 code=Exit.NOT_FOUND, hint=INSTALL_HINT)
            self._major = int(match.group(1))
        return self._major

    def _atomic(self) -> list[str]:
        return ["--rollback-on-failure"] if self.major >= 4 else ["--atomic"]

    # -- builders ---------------------------------------------------------------------
    def lint(self, chart: str, values: Sequence[str], strict: bool, stdin: str | None) -> Command:
        argv = ["helm", "lint", chart, *_values(values, stdin)]
        if strict:
            argv.append("--strict")
        return Command(tuple(argv), f"lint the chart {chart}", stdin)

    def template(self, release: str, chart: str, namespace: str, values: Sequence[str],
                 sets: Iterable[str], stdin: str | None, output_dir: str | None = None) -> Command:
        argv = ["helm", "template", release, chart, "--namespace", namespace,
                *_values(values, stdin), *_sets(sets)]
        if output_dir:
            argv += ["--output-dir", output_dir]
        return Command(tuple(argv), f"render {chart} as release {release} in {namespace}", stdin)

    def install(self, release: str, chart: str, namespace: str, values: Sequence[str],
                sets: Iterable[str], stdin: str | None, *, wait: bool = False,
                timeout: int | None = None, atomic: bool = False, upgrade: bool = False,
                install: bool = True, reuse_values: bool = False, reset_values: bool = False,
                context: str | None = None) -> Command:
        verb = ["upgrade"] + (["--install"] if install else []) if upgrade else ["install"]
        argv = ["helm", *verb, release, chart, "--namespace", namespace, "--create-namespace",
                *_values(values, stdin), *_sets(sets)]
        if reuse_values:
            argv.append("--reuse-values")
        if reset_values:
            argv.append("--reset-values")
        if wait or atomic:
            argv.append("--wait")
        if timeout:
            argv += ["--timeout", f"{int(timeout)}s"]
        if atomic:
            argv += self._atomic()
        argv += _context(context)
        action = "upgrade" if upgrade else "install"
        return Command(tuple(argv), f"{action} release {release} from {chart} in {namespace}", stdin)

    def rollback(self, release: str, namespace: str, revision: int | None = None,
                 context: str | None = None) -> Command:
        argv = ["helm", "rollback", release, *([str(revision)] if revision else []),
                "--namespace", namespace, "--wait", *_context(context)]
        return Command(tuple(argv), f"roll release {release} back to "
                                    f"{f'revision {revision}' if revision else 'the previous revision'}")

    def uninstall(self, release: str, namespace: str, keep_history: bool = False,
                  context: str | None = None) -> Command:
        argv = ["helm", "uninstall", release, "--namespace", namespace, *_context(context)]
        if keep_history:
            argv.append("--keep-history")
        return Command(tuple(argv), f"uninstall release {release} from {namespace}")

    def list(self, namespace: str | None, all_releases: bool = False, all_namespaces: bool = False,
             context: str | None = None) -> Command:
        argv = ["helm", "list", "--output", "json", *_context(context)]
        argv += ["--all-namespaces"] if all_namespaces else ["--namespace", namespace or "default"]
        if all_releases:
            argv.append("--all")
        return Command(tuple(argv), "list releases")

    def status(self, release: str, namespace: str, context: str | None = None) -> Command:
        return Command(("helm", "status", release, "--namespace", namespace, "--output", "json",
                        *_context(context)), f"status of release {release}")

    def history(self, release: str, namespace: str, limit: int | None = None,
                context: str | None = None) -> Command:
        argv = ["helm", "history", release, "--namespace", namespace, "--output", "json",
                *_context(context)]
        if limit:
            argv += ["--max", str(limit)]
        return Command(tuple(argv), f"history of release {release}")

    def package(self, chart: str, destination: str, version: str | None = None,
                app_version: str | None = None) -> Command:
        argv = ["helm", "package", chart, "--destination", destination]
        if version:
            argv += ["--version", version]
        if app_version:
            argv += ["--app-version", app_version]
        return Command(tuple(argv), f"package {chart} into {destination}")

    def repo(self, action: str, name: str | None = None, url: str | None = None) -> Command:
        argv = ["helm", "repo", action, *([name] if name else []), *([url] if url else [])]
        if action == "list":
            argv += ["--output", "json"]
        return Command(tuple(argv), f"helm repo {action} {name or ''}".strip())

    def push(self, archive: str, registry: str, plain_http: bool = False) -> Command:
        argv = ["helm", "push", archive, registry]
        if plain_http:
            argv.append("--plain-http")
        return Command(tuple(argv), f"push {os.path.basename(archive)} to {registry}")

    # -- running ----------------------------------------------------------------------------
    def run(self, command: Command, *, capture: bool = True, timeout: int = 600) -> str:
        argv = [self.require(), *command.argv[1:]]
        try:
            out = subprocess.run(argv, input=command.stdin, capture_output=capture, text=True,
                                 timeout=timeout)
        except subprocess.TimeoutExpired:
            raise NselfError(f"helm did not finish in {timeout}s: {command.summary}",
                             code=Exit.TIMEOUT, hint="raise --timeout, or check the cluster") from None
        if out.returncode:
            raise helm_error(command, out.stderr or "")
        return out.stdout or ""


def helm_error(command: Command, stderr: str) -> NselfError:
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
    return NselfError(f"helm failed to {command.summary}: {text}", code=code, hint=hint)


def _values(files: Sequence[str], stdin: str | None) -> list[str]:
    out = []
    for path in files:
        out += ["--values", path]
    if stdin:
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
