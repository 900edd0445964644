"""Scale benchmarks of issue 21 (prints numbers and ratios; `python tests/benchmarks/scale.py`).

For synthetic projects of N services (run.py's `synthetic_compose`):
- `nself k8s.generate` (kustomize tree, every environment) and `--plain` at 100 and 1000,
  and the C-YAML floor: loading and dumping the same objects with libyaml (goal: 1000
  services ≤ 2× the floor; 1000/100 close to 10, i.e. linear);
- `nself helm.init` at 100 and 1000 (goal ≤ 2 s at 1000);
- `kubectl kustomize overlays/production` of the generated tree at 100 and 1000 (goal
  ≤ 3 s at 1000, linear), and its floor in the same run: `kubectl kustomize base`, the same
  objects with no patch and no namespace (kustomize's own accumulation is quadratic in the
  object count, kubernetes-sigs/kustomize#5084, so the overlay can only be held to its base);
- `nself k8s.apply --env production` of 1000 services to the test API server (kmock-based).
`--sizes 100,1000,3000` changes the sizes; `--no-apply` skips the API server; `--no-kustomize`
skips kubectl (kustomize itself takes minutes at 3000 services).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from run import BIN, synthetic_compose  # noqa: E402

ENV = {k: v for k, v in os.environ.items() if not k.startswith("NSELF_")}


def timed(argv: list[str], cwd: Path, rounds: int, before=None, timeout: int = 600) -> float:
    """Median wall time of `argv` over `rounds` runs after one warm-up; `before()` runs
    untimed before each (e.g. removing the tree, so every run writes it anew)."""
    times = []
    for index in range(rounds + 1):
        if before:
            before()
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=ENV, check=True, capture_output=True, timeout=timeout)
        if index:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def yaml_floor(root: Path, rounds: int) -> float:
    """libyaml load + dump of the objects `--plain` writes: what any YAML writer pays."""
    import yaml

    text = subprocess.run([str(BIN / "nself"), "k8s.generate", "--plain", "--env", "production"],
                          cwd=root, env=ENV, check=True, capture_output=True, text=True).stdout
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        docs = list(yaml.load_all(text, Loader=yaml.CSafeLoader))
        yaml.dump_all(docs, Dumper=yaml.CSafeDumper, sort_keys=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def project(tmp: Path, count: int) -> Path:
    root = tmp / f"synthetic{count}"
    root.mkdir()
    (root / "compose.yaml").write_text(synthetic_compose(count))
    return root


def apply_time(root: Path) -> tuple[float, int]:
    from nself.testing.kube import KubeServer

    server = KubeServer()
    try:
        env = {**ENV, "KUBECONFIG": str(server.kubeconfig(root / "kubeconfig"))}
        before = server.api.request_count
        start = time.perf_counter()
        subprocess.run([str(BIN / "nself"), "k8s.apply", "--env", "production", "--quiet"], cwd=root,
                       env=env, check=True, capture_output=True, timeout=900)
        return time.perf_counter() - start, server.api.request_count - before
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-apply", action="store_true")
    parser.add_argument("--no-kustomize", action="store_true")
    parser.add_argument("--kustomize-limit", type=int, default=180, help="seconds per kustomize run")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    kubectl = None if args.no_kustomize else shutil.which("kubectl")
    rows: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in sizes:
            root = project(Path(tmp), count)
            nself = str(BIN / "nself")
            row = rows[count] = {}
            row["tree"] = timed([nself, "k8s.generate", "--quiet", "--force"], root, args.rounds,
                                before=lambda r=root: shutil.rmtree(r / "k8s", ignore_errors=True))
            row["plain"] = timed([nself, "k8s.generate", "--plain", "--env", "production"], root,
                                 args.rounds)
            row["floor"] = yaml_floor(root, args.rounds)
            row["helm"] = timed([nself, "helm.init", "--quiet", "--force"], root, args.rounds,
                                before=lambda r=root: shutil.rmtree(r / "charts", ignore_errors=True))
            if kubectl:
                for key, folder in (("kustomize", "k8s/overlays/production"), ("kbase", "k8s/base")):
                    try:
                        row[key] = timed([kubectl, "kustomize", folder], root, args.rounds,
                                         timeout=args.kustomize_limit)
                    except subprocess.TimeoutExpired:
                        row[key] = float("inf")   # printed as "inf": over the limit
            print(f"{count:5d} services  k8s.generate tree {row['tree']:.2f} s  --plain {row['plain']:.2f} s"
                  f"  (C-YAML floor {row['floor']:.2f} s: tree {row['tree'] / row['floor']:.1f}x, "
                  f"plain {row['plain'] / row['floor']:.1f}x)  helm.init {row['helm']:.2f} s"
                  + (f"  kubectl kustomize production {row['kustomize']:.2f} s (base alone "
                     f"{row['kbase']:.2f} s: {row['kustomize'] / row['kbase']:.2f}x)" if kubectl else ""),
                  flush=True)
            if count == max(sizes) and not args.no_apply:
                seconds, requests_made = apply_time(root)
                print(f"{count:5d} services  k8s.apply --env production to the test API {seconds:.1f} s "
                      f"in {requests_made} requests", flush=True)
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        factor = large / small
        print(f"scaling {small}→{large} ({factor:.0f}x services): " + "  ".join(
            f"{key} {rows[large][key] / rows[small][key]:.1f}x" for key in rows[large]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
