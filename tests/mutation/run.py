"""Mutation testing of the pure core with mutmut (issue 22): `inv mutate [--module M]`.

Each listed module is mutated on its own, in `.mutation/<module>/`, against only the tests that
exercise it (MODULES), one mutant at a time with a per-mutant deadline, so a run fits a shared
2-core machine. The report gives the score per module (killed ÷ (killed + survived + timeouts),
equivalent mutants from docs/testing.md left out) and every survivor; the exit code is 1 when a
module is below the threshold.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".mutation"
THRESHOLD = 80.0
# A mutant's tests get (time of the clean run x MULTIPLIER + CONSTANT) seconds before it counts as
# a timeout (killed: an infinite loop is a behaviour change the tests noticed).
TIMEOUT_MULTIPLIER, TIMEOUT_CONSTANT = 5.0, 10.0

# module → the tests that exercise it. mutmut runs, for each mutant, only those of them that
# reach the mutated function (it records which when it runs them once, clean).
_PROJECT = ["tests/project/test_compose.py", "tests/project/test_settings.py", "tests/project/test_secrecy.py",
            "tests/test_bad_input.py"]
_K8S = ["tests/k8s/test_probes.py", "tests/k8s/test_kinds.py", "tests/k8s/test_convert.py",
        "tests/k8s/test_storage.py", "tests/k8s/test_pods.py",
        "tests/k8s/test_value_types.py", "tests/project/test_secrecy.py"]
_HELM = ["tests/helm/test_chart.py"]
MODULES: dict[str, list[str]] = {
    "nself/project/names.py": ["tests/project/test_names.py", "tests/k8s/test_convert.py"],
    "nself/project/envfiles.py": ["tests/project/test_envfiles.py", "tests/project/test_secrecy.py"],
    "nself/project/interpolate.py": ["tests/project/test_interpolate.py", "tests/project/test_secrecy.py"],
    "nself/project/normalize.py": _PROJECT,
    "nself/project/compose.py": _PROJECT,
    "nself/project/merge.py": _PROJECT,
    "nself/project/build.py": _PROJECT,
    "nself/project/settings.py": _PROJECT,
    "nself/k8s/volumes.py": _K8S,
    "nself/k8s/probes.py": _K8S,
    "nself/k8s/network.py": _K8S,
    "nself/k8s/kinds.py": _K8S,
    "nself/k8s/pods.py": _K8S,
    "nself/k8s/kustomize.py": ["tests/k8s/test_generate.py", "tests/k8s/test_convert.py"],
    "nself/k8s/environment.py": _K8S,
    "nself/helm/values.py": _HELM,
    "nself/helm/templates.py": _HELM,
    "nself/helm/chart.py": _HELM,
    "nself/plan.py": ["tests/test_plan.py"],
    "nself/providers/http.py": ["tests/cloud/test_http.py"],
    "nself/remote/connection.py": ["tests/remote/test_servers.py"],
}
# Modules at or above the threshold: CI's rotation picks among these (docs/testing.md).
GATED = ["nself/project/names.py", "nself/k8s/probes.py", "nself/k8s/kinds.py", "nself/providers/http.py"]
# Files the mutated tree needs besides the package and the tests.
ALSO_COPY = ["blueprints", "overlays", "docs"]


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def equivalent() -> dict[str, set[str]]:
    """Mutants kept as equivalent, by module, from docs/testing.md: a table row
    `| nself/x.py | nself.x.x_f__mutmut_3 | reason |`."""
    found: dict[str, set[str]] = {}
    doc = ROOT / "docs" / "testing.md"
    for line in doc.read_text().splitlines() if doc.is_file() else []:
        match = re.match(r"\|\s*`?(nself/[\w/]+\.py)`?\s*\|\s*`?([\w.]+__mutmut_\d+)`?\s*\|", line)
        if match:
            found.setdefault(match[1], set()).add(match[2])
    return found


def prepare(module: str) -> Path:
    """A fresh work folder: links to the sources and a pyproject.toml with mutmut's settings."""
    work = WORK / slug(module)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in ["nself", "tests", *ALSO_COPY]:
        (work / name).symlink_to(ROOT / name)
    tests = json.dumps(MODULES[module])
    (work / "pyproject.toml").write_text(
        (ROOT / "pyproject.toml").read_text() +
        "\n[tool.mutmut]\n"
        'source_paths = ["nself"]\n'
        f"also_copy = {json.dumps(ALSO_COPY)}\n"
        f'only_mutate = ["{module}"]\n'
        f"pytest_add_cli_args_test_selection = {tests}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]\n'
        f"timeout_multiplier = {TIMEOUT_MULTIPLIER}\n"
        f"timeout_constant = {TIMEOUT_CONSTANT}\n"
        "use_git_change_detection = false\n")
    return work


def mutate(module: str, children: int) -> dict:
    """Run mutmut on one module; {"module", "killed", "survived": [...], "equivalent": [...], "score"}."""
    work = prepare(module)
    # the work copy has no tests/data of its own: point the tests at the repository's vendored data
    env = {**os.environ, "NSELF_SHARED": str(Path(os.environ.get("NSELF_SHARED") or ROOT / "tests" / "data").resolve())}
    mutmut = [sys.executable, "-m", "mutmut"]
    started = time.monotonic()
    run = subprocess.run([*mutmut, "run", "--max-children", str(children)], cwd=work, env=env,
                         capture_output=True, text=True)
    seconds = round(time.monotonic() - started, 1)
    if run.returncode != 0:       # e.g. the clean tests fail: no score, and below any threshold
        sys.stderr.write(run.stdout[-3000:] + run.stderr[-3000:])
        return {"module": module, "error": f"mutmut exit {run.returncode}", "score": 0.0, "killed": 0,
                "survived": [], "equivalent": [], "mutants": 0, "seconds": seconds}
    listed = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, env=env, capture_output=True,
                            text=True, check=True).stdout
    status = dict(re.findall(r"^\s*([\w.]+__mutmut_\d+):\s*(.+?)\s*$", listed, re.M))
    known = equivalent().get(module, set())
    survived = sorted(name for name, s in status.items() if s in ("survived", "no tests") and name not in known)
    killed = sum(1 for s in status.values() if s in ("killed", "timeout"))
    counted = killed + len(survived)
    return {"module": module, "mutants": len(status), "killed": killed, "survived": survived,
            "equivalent": sorted(known & set(status)), "seconds": seconds,
            "score": round(100.0 * killed / counted, 1) if counted else 100.0,
            "other": sorted({s for s in status.values()} - {"killed", "timeout", "survived", "no tests"})}


def show(work: Path, name: str) -> str:
    return subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=work, capture_output=True,
                          text=True).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--module", action="append", help="a listed module (repeatable); default: all")
    parser.add_argument("--rotate", action="store_true", help="one module, chosen by the day (CI)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD)
    parser.add_argument("--children", type=int, default=1, help="mutants run at once")
    parser.add_argument("--diffs", action="store_true", help="print each survivor's diff")
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args(argv)
    modules = args.module or sorted(MODULES)
    if args.rotate:
        modules = [GATED[int(time.time() // 86400) % len(GATED)]]
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        raise SystemExit(f"not a listed module: {', '.join(unknown)} (see MODULES in {__file__})")
    reports = []
    for module in modules:
        report = mutate(module, args.children)
        reports.append(report)
        if "error" in report:
            print(f"  --- %  {module}  ({report['error']}, {report['seconds']} s)", flush=True)
            continue
        print(f"{report['score']:5.1f} %  {module}  ({report['killed']} killed, {len(report['survived'])} "
              f"survived, {len(report['equivalent'])} equivalent, {report['seconds']} s)", flush=True)
        for name in report["survived"]:
            print(f"         survived: {name}")
            if args.diffs:
                print(show(WORK / slug(module), name))
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2) + "\n")
    below = [r["module"] for r in reports if r["score"] < args.threshold]
    if below:
        print(f"below {args.threshold:g} %: {', '.join(below)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
