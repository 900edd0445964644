"""House rules that keep the code base honest: layout, help texts, key registry."""
import inspect
import json
from pathlib import Path

import pytest

from nself.project import keys
from nself.tasks import namespace

REPO = Path(__file__).resolve().parent.parent
TOP_LEVEL = {"tasks.py", "pyproject.toml", "nself", "blueprints", "overlays", "tests", "docs",
             ".env.example", "README.md", ".ci", ".gitignore", "LICENSE"}


def test_top_level_layout():
    present = {p.name for p in REPO.iterdir() if p.name not in {".git", ".venv"}
               and not p.name.endswith((".egg-info", "_cache")) and p.name not in {".hypothesis",
                                                                                    ".benchmarks", ".mutation",
                                                                                    "dist", "build"}}
    assert present == TOP_LEVEL


def all_tasks():
    ns = namespace()
    return [(name, ns[name]) for name in ns.task_names]


@pytest.mark.parametrize("name, task", all_tasks())
def test_every_task_documents_itself(name, task):
    doc = inspect.getdoc(task.body)
    assert doc, f"{name} has no docstring"
    first = doc.splitlines()[0]
    assert len(first) <= 72 and first.endswith("."), first
    params = [p for p in inspect.signature(task.body).parameters if p != "c"]
    assert sorted(task.help) == sorted(params), f"{name}: help keys must equal parameters"


def test_the_key_registry_covers_the_compose_schema():
    schema = json.loads((REPO / "nself/project/data/compose-spec.json").read_text())
    spec_keys = set(schema["definitions"]["service"]["properties"])
    registered = keys.CARRIED | set(keys.NOT_CARRIED)
    assert spec_keys == registered, (spec_keys - registered, registered - spec_keys)
    assert not keys.CARRIED & set(keys.NOT_CARRIED)


def test_the_compose_support_doc_lists_every_key():
    doc = (REPO / "docs" / "compose-support.md").read_text()
    for key in sorted(keys.CARRIED | set(keys.NOT_CARRIED)):
        assert f"`{key}`" in doc, key


def test_generated_docs_are_current():
    """docs/commands.md (the task docstrings) and docs/compose-support.md: `inv docs --check`
    fails when either differs from what `inv docs` writes, as CI runs it."""
    import os
    import subprocess
    import sys

    inv = os.path.join(os.path.dirname(sys.executable), "inv")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("NSELF_", "INVOKE_"))}
    r = subprocess.run([inv, "docs", "--check"], cwd=REPO, capture_output=True, text=True, env=environ, timeout=120)
    assert r.returncode == 0, r.stderr
    commands = (REPO / "docs" / "commands.md").read_text()
    for name, _ in all_tasks():
        assert f"`nself {name}" in commands, name
