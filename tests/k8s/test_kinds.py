"""Which workload kind a compose service becomes (nself/k8s/kinds.py), rule by rule."""
import pytest

from conftest import make_project
from nself.errors import ConfigError
from nself.k8s.kinds import completion_waiters, image_base, is_stateful_image, workload_kind
from nself.project import load_project


@pytest.mark.parametrize("image, base", [
    ("docker.io/bitnami/postgresql:16@sha256:abc", "postgresql"), ("Redis", "redis"),
    ("ghcr.io/org/app", "app"), ("registry:5000/team/api:1.2", "api"), (None, ""), ("", ""),
])
def test_image_base(image, base):
    assert image_base(image) == base


@pytest.mark.parametrize("image, stateful", [
    ("postgres:16", True), ("bitnami/postgresql:16", True), ("clickhouse/clickhouse-server", True),
    ("mongodb/mongodb-community-server", False), ("couchdb:3", True), ("influxdb:2", True),
    ("timescale/timescaledb:latest", True), ("nginx:1.27", False), ("app", False), (None, False),
])
def test_stateful_images(image, stateful):
    assert is_stateful_image(image) is stateful


def service(tmp_path, body):
    project = load_project(make_project(tmp_path / "app", "services:\n  s:\n" + body +
                                        "  other: {image: app, depends_on: {s: {condition: "
                                        "service_completed_successfully}}}\n"), process_env={})
    return project, project.services["s"]


def kind(tmp_path, body, conf=None, waited_for=True, holds_data=False):
    project, svc = service(tmp_path, body)
    warnings = []
    return workload_kind(project, svc, conf or {}, waited_for, holds_data, warnings), [w.code for w in warnings]


def test_completion_waiters(tmp_path):
    project, _ = service(tmp_path, "    image: app\n")
    assert completion_waiters(project) == {"s": ["other"]}


@pytest.mark.parametrize("conf, expected", [
    ({"kind": "Job"}, "Job"), ({"kind": "statefulset"}, "StatefulSet"), ({"kind": "daemonset"}, "DaemonSet"),
    ({"kind": "deployment"}, "Deployment"), ({"kind": "CronJob", "schedule": "0 3 * * *"}, "CronJob"),
    ({"schedule": "*/5 * * * *"}, "CronJob"),
])
def test_x_nself_kind_and_schedule_win(tmp_path, conf, expected):
    assert kind(tmp_path, "    image: postgres:16\n    restart: 'no'\n", conf, holds_data=True) == (expected, [])


def test_an_unknown_kind_and_a_cronjob_without_schedule_are_refused(tmp_path):
    with pytest.raises(ConfigError) as caught:
        kind(tmp_path, "    image: app\n", {"kind": "pod"})
    assert caught.value.message == "service 's': unknown kind 'pod'"
    assert caught.value.hint == "use one of deployment, statefulset, daemonset, job, cronjob"
    with pytest.raises(ConfigError) as caught:
        kind(tmp_path, "    image: app\n", {"kind": "cronjob"})
    assert caught.value.message == "service 's': a cronjob needs a schedule"
    assert caught.value.hint == 'add schedule: "0 3 * * *" to x-nself'


@pytest.mark.parametrize("mode", ["global", "global-job"])
def test_global_services_are_daemonsets(tmp_path, mode):
    assert kind(tmp_path, f"    image: app\n    deploy: {{mode: {mode}}}\n") == ("DaemonSet", [])


def test_a_service_reading_the_node_is_a_daemonset(tmp_path):
    assert kind(tmp_path, "    image: app\n    volumes: ['/proc:/host/proc:ro', '/var/log:/logs']\n") == \
        ("DaemonSet", ["node-agent"])
    assert kind(tmp_path, "    image: app\n    volumes: ['./data:/data']\n", waited_for=False) == ("Deployment", [])


@pytest.mark.parametrize("body", ["    restart: 'no'\n", "    restart: on-failure\n",
                                  "    deploy: {restart_policy: {condition: none}}\n",
                                  "    deploy: {restart_policy: {condition: on-failure}}\n",
                                  "    deploy: {mode: replicated-job}\n"])
def test_a_one_shot_service_someone_waits_for_is_a_job(tmp_path, body):
    assert kind(tmp_path, "    image: app\n" + body)[0] == "Job"


def test_a_one_shot_service_with_ports_or_nobody_waiting_stays_a_deployment_with_a_warning(tmp_path):
    assert kind(tmp_path, "    image: app\n    restart: 'no'\n    ports: ['80:80']\n") == \
        ("Deployment", ["restart-policy"])
    assert kind(tmp_path, "    image: app\n    restart: 'no'\n    expose: ['80']\n") == \
        ("Deployment", ["restart-policy"])
    assert kind(tmp_path, "    image: app\n    restart: on-failure\n", waited_for=False) == \
        ("Deployment", ["restart-policy"])
    assert kind(tmp_path, "    image: app\n    deploy: {restart_policy: {condition: any}}\n") == ("Deployment", [])


def test_a_datastore_that_holds_data_is_a_statefulset(tmp_path):
    assert kind(tmp_path, "    image: postgres:16\n", holds_data=True) == ("StatefulSet", [])
    assert kind(tmp_path, "    image: postgres:16\n", holds_data=False) == ("Deployment", [])
    assert kind(tmp_path, "    image: app\n", holds_data=True) == ("Deployment", [])
