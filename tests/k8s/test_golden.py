"""Golden tests: hand-reviewed `k8s.generate --plain --env production` output per case.

`pytest tests/k8s/test_golden.py --update-golden` rewrites them; review the diff.
YAML is compared as data, warnings exactly.
"""
from pathlib import Path

import pytest
import yaml

from conftest import CORPUS, STACK
from nself.k8s.generate import Options, generate
from nself.project import load_project

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "k8s"
CASES = {
    "nself-stack": (STACK, ()),
    "kompose-bind-to-configmap": (CORPUS / "kompose-bind-to-configmap", ()),
    "kompose-configs-long": (CORPUS / "kompose-configs-long", ()),
    "kompose-cronjob": (CORPUS / "kompose-cronjob", ()),
    "kompose-deploy-placement": (CORPUS / "kompose-deploy-placement", ()),
    "kompose-env-file": (CORPUS / "kompose-env-file", ()),
    "kompose-envfile-interpolation": (CORPUS / "kompose-envfile-interpolation", ()),
    "kompose-healthcheck-labels": (CORPUS / "kompose-healthcheck-labels", ()),
    "kompose-host-port": (CORPUS / "kompose-host-port", ()),
    "kompose-ingress-expose": (CORPUS / "kompose-ingress-expose", ()),
    "kompose-multiple-files": (CORPUS / "kompose-multiple-files", ("docker-compose.yml", "second.yaml")),
    "kompose-network-mode-service": (CORPUS / "kompose-network-mode-service", ()),
    "kompose-secrets-long": (CORPUS / "kompose-secrets-long", ()),
    "kompose-statefulset-wordpress": (CORPUS / "kompose-statefulset-wordpress", ()),
    "kompose-v2-ports": (CORPUS / "kompose-v2-ports", ()),
    "kompose-v3-headless-networks": (CORPUS / "kompose-v3-headless-networks", ()),
    "kompose-volume-type-labels": (CORPUS / "kompose-volume-type-labels", ()),
    "ac-nginx-golang-postgres": (CORPUS / "ac-nginx-golang-postgres", ()),
    "swarmprom": (CORPUS / "swarmprom", ()),
    "voting-app": (CORPUS / "voting-app", ()),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case, update_golden):
    root, files = CASES[case]
    project = load_project(root, env="production", files=files, process_env={})
    report = generate(project, Options(plain=True))
    warnings = sorted(f"{w['code']}: {w['service'] or '-'}: {w['key'] or '-'}: {w['message']}"
                      for w in report["warnings"])
    folder = GOLDEN / case
    if update_golden:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "expected.yaml").write_text(report["text"])
        (folder / "warnings.txt").write_text("".join(w + "\n" for w in warnings))
    expected = list(yaml.safe_load_all((folder / "expected.yaml").read_text()))
    actual = list(yaml.safe_load_all(report["text"]))
    assert [(d["kind"], d["metadata"]["name"]) for d in actual] == \
        [(d["kind"], d["metadata"]["name"]) for d in expected]
    for got, want in zip(actual, expected):
        assert got == want, f"{want['kind']}/{want['metadata']['name']} differs"
    assert warnings == (folder / "warnings.txt").read_text().splitlines()
