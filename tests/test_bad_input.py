"""The broken-input corpus: each case is a project folder with an expect.yml.

Every case must give its documented exit code and message, a "To fix" hint, no
traceback, and leave the project folder exactly as it was; with --json, stdout is
exactly one JSON document carrying the same code.
"""
import hashlib
from pathlib import Path

import pytest
import yaml

from conftest import copy_tree

CASES = sorted(p for p in (Path(__file__).parent / "bad_inputs").iterdir() if p.is_dir())


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def test_there_are_at_least_90_cases():
    assert len(CASES) >= 90


@pytest.mark.parametrize("mode", ["text", "json"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case, mode, tmp_path, nself):
    spec = yaml.safe_load((case / "expect.yml").read_text())
    root = copy_tree(case, tmp_path / "project")
    (root / "expect.yml").unlink()
    before = snapshot(root)
    argv = spec["argv"] + (["--json"] if mode == "json" else [])
    result = nself(argv, cwd=root, env=spec.get("env"))
    assert result.code == spec["code"], result.err + result.out
    assert spec["message"] in result.err + result.out  # config.validate reports on stdout
    assert "Traceback" not in result.err + result.out
    if mode == "text":
        assert "To fix" in result.err + result.out
    else:
        document = result.json()   # exactly one document: json.loads refuses trailing text
        assert document.get("code", spec["code"]) == spec["code"]
        assert "hint" in document or "problems" in document or "errors" in document, document
    assert snapshot(root) == before
