"""Fuzz the loader and the converter: whatever the files say, the only failure is an
NselfError, and what converts is valid Kubernetes."""
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nself.errors import NselfError
from nself.project import load_project

SERVICE_KEYS = ["image", "ports", "volumes", "environment", "env_file", "depends_on", "healthcheck",
                "deploy", "command", "entrypoint", "extends", "profiles", "secrets", "configs",
                "networks", "restart", "user", "tmpfs", "expose", "labels", "mem_limit", "cpus",
                "scale", "stop_grace_period", "ulimits", "extra_hosts", "build", "x-nself",
                "shm_size", "sysctls"]

text = st.text(alphabet=st.sampled_from(list("ab01:/-.$ {}?+=_~*[]\"'\\")), max_size=12)
plausible = st.sampled_from(["1", "0.5", "512M", "1g", "10s", "1m30s", "-1", "abc", "", "0440", "999",
                            "80", "8080:80", "127.0.0.1:1:1", "1-3", "a:/b:ro", "${X:-1}", "$$"])
scalar = st.one_of(plausible, plausible, st.none(), st.booleans(), st.integers(-5, 70000),
                   st.floats(allow_nan=False), text)
value = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["test", "target", "source", "published", "limits", "cpus",
                                     "memory", "condition", "service", "file", "interval",
                                     "replicas", "soft", "hard", "type", "context"]), inner,
                    max_size=3)), max_leaves=8)
# Right shapes with wrong contents: these get past the schema and reach the model builder.
shaped = st.fixed_dictionaries({"image": text}, optional={
    "deploy": st.fixed_dictionaries({}, optional={
        "replicas": scalar, "mode": scalar,
        "resources": st.fixed_dictionaries({}, optional={
            "limits": st.fixed_dictionaries({}, optional={"cpus": scalar, "memory": scalar,
                                                          "pids": scalar}),
            "reservations": st.fixed_dictionaries({}, optional={"cpus": scalar, "memory": scalar})}),
        "restart_policy": st.fixed_dictionaries({}, optional={"max_attempts": scalar, "delay": scalar,
                                                              "window": scalar}),
        "update_config": st.fixed_dictionaries({}, optional={"parallelism": scalar, "delay": scalar,
                                                             "max_failure_ratio": scalar}),
        "placement": st.fixed_dictionaries({}, optional={"constraints": st.lists(text, max_size=2)})}),
    "healthcheck": st.fixed_dictionaries({}, optional={
        "test": st.one_of(text, st.lists(text, max_size=3)), "retries": scalar, "interval": scalar,
        "timeout": scalar, "start_period": scalar, "disable": st.booleans()}),
    "ulimits": st.dictionaries(st.sampled_from(["nofile", "nproc"]), st.one_of(
        scalar, st.fixed_dictionaries({"soft": scalar, "hard": scalar})), max_size=2),
    "secrets": st.lists(st.one_of(st.just("pw"), st.fixed_dictionaries(
        {"source": st.just("pw")}, optional={"target": text, "mode": scalar, "uid": scalar})),
        max_size=2),
    "ports": st.lists(st.one_of(scalar, st.fixed_dictionaries(
        {"target": scalar}, optional={"published": scalar, "host_ip": text, "protocol": text})),
        max_size=3),
    "volumes": st.lists(st.one_of(text, st.fixed_dictionaries(
        {"type": st.sampled_from(["volume", "bind", "tmpfs"]), "target": text},
        optional={"source": text, "tmpfs": st.fixed_dictionaries({"size": scalar})})), max_size=2),
    "cpus": scalar, "mem_limit": scalar, "scale": scalar, "stop_grace_period": scalar,
    "shm_size": scalar, "tmpfs": st.one_of(text, st.lists(text, max_size=2)),
    "environment": st.one_of(st.lists(text, max_size=3), st.dictionaries(text, scalar, max_size=3)),
    "depends_on": st.one_of(st.lists(st.sampled_from(["web", "db", "x"]), max_size=2),
                            st.dictionaries(st.sampled_from(["web", "db"]), st.fixed_dictionaries(
                                {}, optional={"condition": text, "required": st.booleans()}),
                                max_size=2)),
    "extends": st.one_of(st.sampled_from(["web", "db"]), st.fixed_dictionaries(
        {"service": st.sampled_from(["web", "db", "zz"])}, optional={"file": text})),
})
service = st.dictionaries(st.sampled_from(SERVICE_KEYS), value, max_size=5) | shaped
document = st.fixed_dictionaries({
    "services": st.dictionaries(st.sampled_from(["web", "db", "my_api", "1x"]), service,
                                min_size=1, max_size=3),
}, optional={"volumes": st.dictionaries(st.sampled_from(["data", "db"]), value, max_size=2),
             "secrets": st.just({"pw": {"environment": "PW"}}),
             "include": value, "name": text})
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def attempt(root):
    try:
        return load_project(root, process_env={})
    except NselfError as exc:
        assert exc.message and exc.code in (2, 3)
        return None


@FUZZ
@given(document)
def test_structured_documents(tmp_path, doc):
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(doc))
    attempt(tmp_path)


@FUZZ
@given(st.text(max_size=200))
def test_arbitrary_text(tmp_path, body):
    (tmp_path / "compose.yaml").write_text(body)
    attempt(tmp_path)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("AB=${}:-?+' \"\n#x_")), max_size=60))
def test_arbitrary_env_files(tmp_path, body):
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: 'x:${A:-1}'\n")
    (tmp_path / ".env").write_text(body)
    attempt(tmp_path)


@FUZZ
@given(document)
def test_converter(tmp_path, validate_objects, doc):
    """Whatever loads converts (or refuses with an NselfError) into objects the Kubernetes
    schemas accept."""
    from nself.k8s.convert import convert
    from nself.k8s.settings import load_overlay

    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(doc))
    project = attempt(tmp_path)
    if project is None:
        return
    try:
        manifests = convert(project, load_overlay(project, project.env))
    except NselfError as exc:
        assert exc.message and exc.code in (2, 3)
        return
    validate_objects(manifests.all() + manifests.secrets)
