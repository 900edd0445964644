"""Kind 4 of issue 21: values that change type or meaning between compose, nself's model and a
YAML 1.2 reader (kustomize, Helm, Go). Every generated file is re-read with a YAML 1.2 core
reader and compared with the model."""
from pathlib import Path

import pytest

from conftest import copy_tree, make_project
from nself.errors import ConfigError
from nself.k8s.generate import Options, generate
from nself.project import load_project
from nself.project.yamlio import parse

CASES = Path(__file__).resolve().parent.parent / "data" / "cases"


def yaml12(text):
    """Read a generated stream as a YAML 1.2 reader does (the compose reader is one)."""
    return [parse(doc, Path("generated"), "output", compose=True) for doc in text.split("\n---\n")]


def test_environment_and_args_keep_their_text_for_a_yaml12_reader(tmp_path):
    project = load_project(copy_tree(CASES / "helm-numeric-env", tmp_path / "p"), env="production",
                           process_env={})
    docs = yaml12(generate(project, Options(plain=True))["text"])
    env = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "gateway-env")
    assert env["data"] == {
        "GW_PORT": "8001", "MAX_BODY_BYTES": "10485760", "BIG_ID": "12345678901234567890",
        "RATIO": "1.5", "APP_VERSION": "1.10", "HEX": "0x1F", "OCTAL_LIKE": "0755", "SCI": "1e3",
        "FLAG_TRUE": "true", "FLAG_YES": "yes", "NULLISH": "null", "TILDE": "~",
        "LEADING_ZERO": "007", "TAG_LIKE": "2e5"}
    worker = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "worker")
    pod = worker["spec"]["template"]
    assert pod["spec"]["containers"][0]["args"] == ["worker", "--batch-size", "5e3", "--mode", "0o17"]
    assert pod["metadata"]["annotations"] == {"com.example.build": "7e2"}
    # The model is what the file says: every generated value equals it, type included.
    model = project.services["gateway"].environment
    assert {k: str(v) for k, v in model.items()} == env["data"]


@pytest.mark.parametrize("text, expected", [
    ("restart: no", "no"), ("restart: 'no'", "no"),          # YAML 1.2: `no` is a string
    ("environment: {T: 12:30}", {"T": "12:30"}),                # not sexagesimal 750
    ("environment: {A: on}", {"A": "on"}),
    ("environment: {A: true}", {"A": "true"}),
])
def test_compose_files_are_read_as_yaml_12(tmp_path, text, expected):
    key = text.split(":", 1)[0]
    project = load_project(make_project(tmp_path / "p", f"services:\n  web:\n    image: x:1\n    {text}\n"),
                           process_env={})
    web = project.services["web"]
    value = web.restart if key == "restart" else dict(web.environment)
    assert value == expected


def test_octal_modes_follow_go(tmp_path):
    project = load_project(copy_tree(CASES / "secret-mode-octal", tmp_path / "p"), process_env={})
    modes = {r.target: r.mode for r in (*project.services["api"].secrets,
                                        *project.services["api"].configs)}
    assert modes == {"/run/secrets/api_key": 0o400, "/etc/tls/cert.pem": 0o440,
                     "/etc/app/app.conf": 0o644}


@pytest.mark.parametrize("value, expected", [("false", False), ("true", True), ("no", False),
                                             ("YES", True), ("", False)])
def test_interpolated_booleans_mean_what_they_say(tmp_path, value, expected):
    root = make_project(tmp_path / "p", "services:\n  web:\n    image: x:1\n    read_only: ${RO}\n"
                        "    privileged: ${RO}\n", {".env": f"RO={value}\n"})
    web = load_project(root, process_env={}).services["web"]
    assert (web.read_only, web.privileged) == (expected, expected)


def test_an_interpolated_boolean_that_is_not_one_is_refused(tmp_path):
    root = make_project(tmp_path / "p", "services:\n  web:\n    image: x:1\n    read_only: ${RO}\n",
                        {".env": "RO=maybe\n"})
    with pytest.raises(ConfigError, match="read_only: expected true or false, got 'maybe'"):
        load_project(root, process_env={})
