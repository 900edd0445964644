"""Kinds 5-6 of issue 21: security fields as the runtime reads them, start-up and waiting."""
from pathlib import Path

import pytest

from conftest import copy_tree, make_project
from nself.errors import ConfigError
from nself.k8s.convert import convert
from nself.project import load_project

CASES = Path(__file__).resolve().parent.parent / "data" / "cases"


def workloads(root):
    m = convert(load_project(root, process_env={}))
    return {o["metadata"]["name"]: o for o in m.all() if o["kind"] in ("Deployment", "StatefulSet")}, m


def pod(workload):
    return workload["spec"]["template"]["spec"]


def test_capabilities_lose_the_cap_prefix_and_are_upper_case(tmp_path):
    found, _ = workloads(copy_tree(CASES / "cap-prefix", tmp_path / "p"))
    assert pod(found["vpn"])["containers"][0]["securityContext"]["capabilities"] == {
        "add": ["NET_ADMIN", "SYS_MODULE"], "drop": ["ALL"]}


def test_a_relative_secret_target_is_a_file_under_run_secrets(tmp_path):
    found, _ = workloads(copy_tree(CASES / "secret-mode-octal", tmp_path / "p"))
    by_path = {m["mountPath"]: m for m in pod(found["api"])["containers"][0]["volumeMounts"]}
    assert set(by_path) == {"/run/secrets/api_key", "/etc/tls/cert.pem", "/etc/app/app.conf"}
    modes = {v["name"]: (v.get("secret") or v.get("configMap"))["defaultMode"]
             for v in pod(found["api"])["volumes"]}
    assert modes == {"secret-api-key": 0o400, "secret-tls-cert": 0o440, "config-app-conf": 0o644}


def test_host_network_keeps_cluster_dns(tmp_path):
    found, _ = workloads(make_project(tmp_path / "p", "services:\n  agent: {image: 'a:1', network_mode: host}\n"))
    assert pod(found["agent"])["hostNetwork"] is True
    assert pod(found["agent"])["dnsPolicy"] == "ClusterFirstWithHostNet"


def test_udp_only_dependency_is_not_waited_for_with_tcp(tmp_path):
    found, m = workloads(copy_tree(CASES / "depends-on-udp", tmp_path / "p"))
    assert "initContainers" not in pod(found["app"])
    assert ("app", "wait") in {(w.service, w.code) for w in m.warnings}


def test_a_tcp_port_of_a_mixed_dependency_is_the_one_waited_for(tmp_path):
    found, _ = workloads(make_project(tmp_path / "p", """
        services:
          calls: {image: 'c:1', expose: ['8443/udp', '8443/tcp']}
          app: {image: 'a:1', depends_on: [calls]}
    """))
    assert "nc -z -w 2 calls 8443" in pod(found["app"])["initContainers"][0]["command"][2]


def test_startup_probe_allows_what_compose_allows(tmp_path):
    found, _ = workloads(make_project(tmp_path / "p", """
        services:
          db:
            image: 'x:1'
            healthcheck: {test: ['CMD', 'check'], interval: 10s, retries: 5, start_period: 1m}
    """))
    startup = pod(found["db"])["containers"][0]["startupProbe"]
    # compose: 60 s of start period, then 5 failures 10 s apart = 110 s
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 110
    assert startup["periodSeconds"] * (startup["failureThreshold"] - 1) < 110


@pytest.mark.parametrize("user, settings, expected", [
    ("1000:1001", "", {"fsGroup": 1001}),
    ("70", "", {"fsGroup": 70}),
    ("0", "", None),
    (None, "{run_as_user: 1000, run_as_group: 1000, fs_group: 2000}",
     {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000}),
])
def test_pod_identity_lets_non_root_images_write_their_volumes(tmp_path, user, settings, expected):
    lines = "services:\n  app:\n    image: 'a:1'\n"
    if user:
        lines += f"    user: '{user}'\n"
    if settings:
        lines += f"    x-nself: {settings}\n"
    found, _ = workloads(make_project(tmp_path / "p", lines))
    assert pod(found["app"]).get("securityContext") == expected


@pytest.mark.parametrize("settings, message", [
    ("hello", "x-nself must be a mapping"),
    ("{replicas: abc}", "replicas: expected a whole number"),
    ("{fs_group: -1}", "fs_group: expected a user or group id"),
    ("{access_mode: ReadWriteSometimes}", "access_mode: expected ReadWriteOnce or ReadWriteMany"),
    ("{colour: blue}", "unknown x-nself/nself.yml setting"),
])
def test_x_nself_settings_are_checked(tmp_path, settings, message):
    root = make_project(tmp_path / "p", f"services:\n  app:\n    image: 'a:1'\n    x-nself: {settings}\n")
    with pytest.raises(ConfigError, match=message):
        workloads(root)


def test_the_security_opt_hint_names_settings_that_exist(tmp_path):
    from nself.k8s.settings import SERVICE_KEYS
    from nself.project.keys import NOT_CARRIED

    named = [w for w in NOT_CARRIED["security_opt"].replace(",", " ").split() if "_" in w]
    assert named and set(named) <= SERVICE_KEYS
