"""The compose loader against the Compose Specification's rules."""
import textwrap

import pytest

from nself.errors import ConfigError
from nself.project import load_project
from nself.project.model import Dependency, Mount, Port


def project(tmp_path, docs=None, env_text=None, **kw):
    for name, text in (docs or {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    if env_text is not None:
        (tmp_path / ".env").write_text(env_text)
    kw.setdefault("process_env", {})
    return load_project(tmp_path, **kw)


def one(tmp_path, service_yaml, **kw):
    text = "services:\n  web:\n" + textwrap.indent(textwrap.dedent(service_yaml), "    ")
    return project(tmp_path, {"compose.yaml": text}, **kw).services["web"]


@pytest.mark.parametrize("spec, expected", [
    ("80", [Port(80)]),
    ("8080:80", [Port(80, "8080")]),
    ("127.0.0.1:5432:5432", [Port(5432, "5432", "127.0.0.1")]),
    ("53:53/udp", [Port(53, "53", protocol="udp")]),
    ("3000-3002", [Port(3000), Port(3001), Port(3002)]),
    ("9090-9091:8080-8081", [Port(8080, "9090"), Port(8081, "9091")]),
    ("8000-8010:80", [Port(80, "8000-8010")]),
    ("127.0.0.1:5000-5001:5000-5001/udp",
     [Port(5000, "5000", "127.0.0.1", "udp"), Port(5001, "5001", "127.0.0.1", "udp")]),
    ("[::1]:6001:6001", [Port(6001, "6001", "::1")]),
    ("::6002", [Port(6002)]),
])
def test_short_port_syntax(tmp_path, spec, expected):
    assert list(one(tmp_path, f"image: x\nports: ['{spec}']\n").ports) == expected


def test_long_port_syntax(tmp_path):
    svc = one(tmp_path, """
        image: x
        ports:
          - {target: 80, published: "8080", host_ip: 127.0.0.1, protocol: tcp, mode: host, name: web}
    """)
    assert svc.ports == (Port(80, "8080", "127.0.0.1", "tcp", "host", "web"),)


@pytest.mark.parametrize("spec", ["abc", "80:80:80:80", "0:80", "70000", "80/tcpx", "1-3:1-2"])
def test_invalid_ports_are_errors(tmp_path, spec):
    with pytest.raises(ConfigError, match="invalid port") as exc:
        one(tmp_path, f"image: x\nports: ['{spec}']\n")
    assert "127.0.0.1:5432:5432" in exc.value.hint


def test_volume_forms(tmp_path):
    text = """
    services:
      web:
        image: x
        volumes:
          - data:/var/lib/data
          - ./conf:/etc/conf:ro
          - /cache
          - type: tmpfs
            target: /run
            tmpfs: {size: 64m}
          - {type: bind, source: ./logs, target: /logs}
        tmpfs: /tmp:size=1m
    volumes:
      data: {}
    """
    svc = project(tmp_path, {"compose.yaml": text}).services["web"]
    root = str(tmp_path.resolve())
    assert svc.volumes == (
        Mount("volume", "/var/lib/data", "data"),
        Mount("bind", "/etc/conf", f"{root}/conf", read_only=True),
        Mount("volume", "/cache"),
        Mount("tmpfs", "/run", size=64 * 1024 * 1024),
        Mount("bind", "/logs", f"{root}/logs"),
        Mount("tmpfs", "/tmp", size=1024 * 1024),
    )


def test_environment_list_and_map_and_env_file(tmp_path):
    files = {
        "compose.yaml": """
            services:
              a:
                image: x
                env_file: [common.env]
                environment: [A=1, B, "C=x=y"]
              b:
                image: x
                env_file: common.env
                environment: {A: 2, FLAG: true, N: null}
        """,
        "common.env": "A=from-file\nSHARED=${TAG:-v1}\n",
    }
    p = project(tmp_path, files, process_env={"B": "from-shell"})
    assert dict(p.services["a"].environment) == {"A": "1", "SHARED": "v1", "B": "from-shell",
                                                 "C": "x=y"}
    assert dict(p.services["b"].environment) == {"A": "2", "SHARED": "v1", "FLAG": "true"}
    assert any(w.key == "environment.N" for w in p.warnings)


def test_interpolation_uses_the_env_cascade_and_marks_secrets(tmp_path):
    files = {
        "compose.yaml": """
            services:
              api:
                image: "app:${TAG:-latest}"
                environment:
                  DATABASE_URL: postgres://app:${DB_PASSWORD}@db/app
                  LOG_LEVEL: ${LOG_LEVEL:-info}
        """,
        ".env": "TAG=1.2\n",
        ".env.secrets": "DB_PASSWORD=hunter2-long\n",
    }
    svc = project(tmp_path, files).services["api"]
    assert svc.image == "app:1.2"
    assert svc.environment["DATABASE_URL"] == "postgres://app:hunter2-long@db/app"
    assert svc.secret_env == {"DATABASE_URL"}


def test_required_variable_stops_loading(tmp_path):
    with pytest.raises(ConfigError, match="TAG is unset.*compose.yaml at services.web.image: set TAG"):
        one(tmp_path, "image: app:${TAG:?set TAG}\n")


def test_override_file_is_picked_up_and_merged(tmp_path):
    files = {
        "docker-compose.yml": """
            services:
              web:
                image: web:1
                command: [serve, --port, "80"]
                ports: ["8080:80"]
                environment: {A: "1", B: "1"}
                volumes: [data:/data]
                cap_add: [NET_ADMIN]
            volumes: {data: {}, other: {}}
        """,
        "docker-compose.override.yml": """
            services:
              web:
                image: web:2
                command: [serve]
                ports: ["8081:81", "8080:80"]
                environment: [B=2, C=3]
                volumes: [other:/data]
                cap_add: [NET_ADMIN, SYS_TIME]
        """,
    }
    svc = project(tmp_path, files).services["web"]
    assert svc.image == "web:2"
    assert svc.command == ("serve",)                       # replaced, not appended
    assert svc.ports == (Port(80, "8080"), Port(81, "8081"))  # unique by (ip, target, published, proto)
    assert dict(svc.environment) == {"A": "1", "B": "2", "C": "3"}
    assert svc.volumes == (Mount("volume", "/data", "other"),)  # unique by target
    assert svc.cap_add == ("NET_ADMIN", "SYS_TIME")


def test_reset_and_override_tags(tmp_path):
    files = {
        "compose.yaml": """
            services:
              web:
                image: web
                ports: ["8080:80"]
                environment: {FOO: bar, KEEP: "1"}
        """,
        "compose.override.yaml": """
            services:
              web:
                ports: !reset []
                environment:
                  FOO: !reset null
              api:
                image: api
                ports: ["1:1"]
        """,
    }
    p = project(tmp_path, files)
    assert p.services["web"].ports == ()
    assert dict(p.services["web"].environment) == {"KEEP": "1"}
    files["compose.override.yaml"] = """
        services:
          web:
            ports: !override ["8443:443"]
    """
    (tmp_path / "compose.override.yaml").unlink()
    p = project(tmp_path, files)
    assert p.services["web"].ports == (Port(443, "8443"),)


def test_explicit_files_merge_in_order(tmp_path):
    files = {"a.yml": "services:\n  web: {image: a, environment: {X: a}}\n",
             "b.yml": "services:\n  web: {image: b}\n  db: {image: pg}\n"}
    p = project(tmp_path, files, files=["a.yml", "b.yml"])
    assert p.services["web"].image == "b" and p.services["web"].environment["X"] == "a"
    assert list(p.services) == ["web", "db"]


def test_extends_in_same_and_other_file_with_relative_paths(tmp_path):
    files = {
        "compose.yaml": """
            services:
              base:
                image: busybox
                user: root
                environment: {TZ: utc, PORT: "80"}
              common:
                extends: base
                cap_add: [A]
              cli:
                extends: {service: common}
                environment: {PORT: "8080"}
                cap_add: [B]
              imported:
                extends: {file: sub/other.yaml, service: svc}
        """,
        "sub/other.yaml": "services:\n  svc:\n    image: nginx\n    env_file: [./extra.env]\n",
        "sub/extra.env": "SOURCE=sub\n",
    }
    p = project(tmp_path, files)
    cli = p.services["cli"]
    assert (cli.image, cli.user) == ("busybox", "root")
    assert dict(cli.environment) == {"TZ": "utc", "PORT": "8080"}
    assert cli.cap_add == ("A", "B")
    assert p.services["imported"].environment["SOURCE"] == "sub"   # relative to sub/


def test_circular_extends_is_an_error(tmp_path):
    text = "services:\n  a: {image: x, extends: b}\n  b: {image: x, extends: a}\n"
    with pytest.raises(ConfigError, match="circular extends"):
        project(tmp_path, {"compose.yaml": text})


def test_include_brings_services_and_refuses_conflicts(tmp_path):
    files = {
        "compose.yaml": "include: [lib/compose.yaml]\nservices:\n  web:\n    image: web\n"
                        "    depends_on: [cache]\n",
        "lib/compose.yaml": "services:\n  cache:\n    image: redis:${REDIS_TAG}\n",
        "lib/.env": "REDIS_TAG=7\n",
    }
    p = project(tmp_path, files)
    assert p.services["cache"].image == "redis:7"
    (tmp_path / "lib/compose.yaml").write_text("services:\n  web:\n    image: other\n")
    with pytest.raises(ConfigError, match="defined both"):
        project(tmp_path)


def test_missing_include_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="included compose file not found"):
        project(tmp_path, {"compose.yaml": "include: [nope.yaml]\nservices: {}\n"})


def test_profiles(tmp_path):
    text = """
        services:
          web: {image: web}
          debug: {image: dbg, profiles: [debug]}
          seed: {image: seed, profiles: [seed, test]}
    """
    assert list(project(tmp_path, {"compose.yaml": text}).services) == ["web"]
    assert list(project(tmp_path, profiles=["test"]).services) == ["web", "seed"]
    assert len(project(tmp_path, profiles=["*"]).services) == 3


def test_dependency_on_a_profiled_off_service_is_an_error(tmp_path):
    text = "services:\n  web: {image: w, depends_on: [db]}\n  db: {image: d, profiles: [db]}\n"
    with pytest.raises(ConfigError, match="depends on undefined service 'db'"):
        project(tmp_path, {"compose.yaml": text})
    assert project(tmp_path, profiles=["db"]).services["web"].depends_on == (Dependency("db"),)


def test_anchors_and_extension_fields(tmp_path):
    text = """
        x-common: &common
          restart: always
          environment: {A: "1"}
        x-nself-defaults: {tier: backend}
        services:
          web:
            <<: *common
            image: web
            x-nself: {kind: statefulset}
    """
    p = project(tmp_path, {"compose.yaml": text})
    web = p.services["web"]
    assert web.restart == "always" and web.environment["A"] == "1"
    assert web.nself == {"kind": "statefulset"}
    assert p.extensions["x-nself-defaults"] == {"tier": "backend"}


def test_healthcheck_forms_and_durations(tmp_path):
    text = """
        services:
          a: {image: x, healthcheck: {test: [CMD, curl, -f, http://x], interval: 1m30s, timeout: 500ms,
                                      start_period: 1h, retries: 3}}
          b: {image: x, healthcheck: {test: [CMD-SHELL, pg_isready -U app]}}
          c: {image: x, healthcheck: {test: "curl -f localhost || exit 1"}}
          d: {image: x, healthcheck: {test: [NONE]}}
          e: {image: x, healthcheck: {disable: true}}
    """
    s = project(tmp_path, {"compose.yaml": text}).services
    assert s["a"].healthcheck.test == ("curl", "-f", "http://x") and not s["a"].healthcheck.shell
    assert (s["a"].healthcheck.interval, s["a"].healthcheck.timeout,
            s["a"].healthcheck.start_period) == (90.0, 0.5, 3600.0)
    assert s["b"].healthcheck.test == ("pg_isready -U app",) and s["b"].healthcheck.shell
    assert s["c"].healthcheck.shell
    assert s["d"].healthcheck.disabled and s["e"].healthcheck.disabled


def test_deploy_section(tmp_path):
    svc = one(tmp_path, """
        image: x
        deploy:
          mode: replicated
          replicas: 3
          resources:
            limits: {cpus: "0.5", memory: 512M}
            reservations: {cpus: "0.25", memory: 128M}
          restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3}
          update_config: {parallelism: 1, order: start-first}
          placement: {constraints: [node.role == manager], preferences: [{spread: node.labels.zone}]}
          labels: {tier: web}
    """)
    d = svc.deploy
    assert d.replicas == 3
    assert (d.resources.cpu_limit, d.resources.memory_limit) == (0.5, 512 * 1024 ** 2)
    assert (d.resources.cpu_request, d.resources.memory_request) == (0.25, 128 * 1024 ** 2)
    assert (d.restart_policy.condition, d.restart_policy.delay) == ("on-failure", 5.0)
    assert d.update_config.order == "start-first"
    assert d.constraints == ("node.role == manager",) and d.preferences == ("node.labels.zone",)
    assert dict(d.labels) == {"tier": "web"}


def test_legacy_resource_keys_and_depends_on_conditions(tmp_path):
    text = """
        services:
          db: {image: pg}
          init: {image: x, restart: "no"}
          web:
            image: x
            mem_limit: 1g
            cpus: 1.5
            scale: 2
            depends_on:
              db: {condition: service_healthy}
              init: {condition: service_completed_successfully, required: false}
    """
    web = project(tmp_path, {"compose.yaml": text}).services["web"]
    assert (web.deploy.resources.memory_limit, web.deploy.resources.cpu_limit) == (1024 ** 3, 1.5)
    assert web.deploy.replicas == 2
    assert web.depends_on == (Dependency("db", "service_healthy"),
                              Dependency("init", "service_completed_successfully", required=False))


def test_keys_the_model_does_not_carry_are_warned(tmp_path):
    p = project(tmp_path, {"compose.yaml": "services:\n  web:\n    image: x\n    logging: {driver: syslog}\n"
                                           "    container_name: web1\n"})
    found = {(w.service, w.key, w.code) for w in p.warnings}
    assert {("web", "logging", "not-carried"), ("web", "container_name", "not-carried")} <= found


def test_schema_errors_name_file_line_and_key(tmp_path):
    text = "services:\n  web:\n    image: x\n    imgae: y\n    ports: 80\n"
    with pytest.raises(ConfigError) as exc:
        project(tmp_path, {"compose.yaml": text})
    details = "\n".join(exc.value.details)
    assert "compose.yaml:2: services.web: unknown key(s) 'imgae'" in details
    assert "compose.yaml:5: services.web.ports" in details


def test_project_name_and_namespace(tmp_path):
    p = project(tmp_path, {"compose.yaml": "name: My_App\nservices: {web: {image: x}}\n"})
    assert (p.name, p.namespace) == ("my-app", "my-app-local")
    (tmp_path / "nself.yml").write_text("environments:\n  production: {namespace: shop}\n")
    assert project(tmp_path, env="prod").namespace == "shop"
    assert project(tmp_path, env="staging").namespace == "my-app-staging"


def test_a_command_longer_than_linux_allows_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="longer than Linux allows"):
        one(tmp_path, "image: x\ncommand: 'echo " + "a " * 70_000 + "'\n")


def test_yaml_1_2_booleans_keep_yes_and_on_as_names(tmp_path):
    loaded = project(tmp_path, {"compose.yaml": "services:\n  yes:\n    image: a\n  on:\n    image: b\n"})
    assert sorted(loaded.services) == ["on", "yes"]


@pytest.mark.parametrize("text, value", [("._", "._"), ("_", "_"), ("0o_", "0o_"), ("1_000", 1000), (".5", 0.5)])
def test_number_like_scalars_read_as_compose_does(tmp_path, text, value):
    # Found by the converter fuzzing: `replicas: ._` crashed float() (internal error).
    from nself.project import yamlio

    assert yamlio.parse(f"a: {text}\n", tmp_path / "compose.yaml", "compose file", compose=True) == {"a": value}
