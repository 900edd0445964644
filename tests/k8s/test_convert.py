"""Conversion rules, one by one, from small projects (objects compared as data)."""
import pytest

from conftest import make_project
from nself.errors import ConfigError
from nself.k8s.convert import Options, convert
from nself.k8s.settings import BASE, load_overlay
from nself.project import load_project


def convert_compose(tmp_path, compose, overlay=None, include_secrets=False, files=None):
    project = load_project(make_project(tmp_path / "app", compose, files), process_env={})
    chosen = load_overlay(project, overlay) if overlay else BASE
    return project, convert(project, chosen, Options(include_secrets=include_secrets))


def find(manifests, kind, name=None):
    found = [o for o in manifests.all() if o["kind"] == kind and
             (name is None or o["metadata"]["name"] == name)]
    return found[0] if name is not None and found else (found if name is None else None)


def pod(workload):
    spec = workload["spec"]
    return (spec.get("jobTemplate", {}).get("spec", spec))["template"]["spec"]


def codes(manifests, project=None):
    return {(w.service, w.code) for w in manifests.warnings + list(project.warnings if project else [])}


# -- workload kinds ---------------------------------------------------------------------
KINDS = """
services:
  web: {image: nginx:1.27, ports: ["80:80"]}
  db: {image: postgres:16, volumes: [pg:/var/lib/postgresql/data]}
  cache: {image: redis:7}
  agent: {image: node-exporter:1, deploy: {mode: global}}
  migrate:
    image: app:1
    restart: "no"
  api:
    image: app:1
    expose: ["8000"]
    depends_on: {migrate: {condition: service_completed_successfully}}
  flaky: {image: app:1, restart: on-failure, ports: ["9000:9000"]}
  nightly: {image: app:1, x-nself: {schedule: "0 3 * * *"}}
  forced: {image: redis:7, x-nself: {kind: deployment}, volumes: [r:/data]}
volumes: {pg: {}, r: {}}
"""


@pytest.mark.parametrize("service, kind", [
    ("web", "Deployment"), ("db", "StatefulSet"), ("cache", "Deployment"), ("agent", "DaemonSet"),
    ("migrate", "Job"), ("api", "Deployment"), ("flaky", "Deployment"), ("nightly", "CronJob"),
    ("forced", "Deployment"),
])
def test_workload_kind(tmp_path, service, kind):
    _, m = convert_compose(tmp_path, KINDS)
    assert find(m, kind, service) is not None


def test_on_failure_server_warns_and_job_waiter_gets_rbac(tmp_path):
    project, m = convert_compose(tmp_path, KINDS)
    assert ("flaky", "restart-policy") in codes(m)
    api = pod(find(m, "Deployment", "api"))
    assert api["initContainers"][0]["command"][:3] == ["kubectl", "wait", "--for=condition=complete"]
    assert api["serviceAccountName"] == "nself-job-waiter"
    assert find(m, "Role", "nself-job-waiter")["rules"][0]["resources"] == ["jobs"]
    assert pod(find(m, "Job", "migrate"))["restartPolicy"] == "OnFailure"
    assert find(m, "CronJob", "nightly")["spec"]["schedule"] == "0 3 * * *"


def test_statefulset_has_headless_service_and_claim_templates(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          db: {image: postgres:16, volumes: [pg:/var/lib/postgresql/data], x-nself: {storage: 5Gi}}
          api: {image: app, depends_on: [db]}
        volumes: {pg: {}}
    """)
    db = find(m, "StatefulSet", "db")
    assert db["spec"]["serviceName"] == "db"
    claim = db["spec"]["volumeClaimTemplates"][0]
    assert claim["metadata"]["name"] == "pg" and claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    service = find(m, "Service", "db")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"][0]["port"] == 5432          # the image's port, assumed…
    assert find(m, "PersistentVolumeClaim", "pg") is None        # …and no separate claim


# -- names and services -----------------------------------------------------------------------
def test_names_keep_service_names_without_prefixes(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          my_api: {image: a, ports: ["8080:8080"]}
    """)
    assert find(m, "Deployment", "my-api") and find(m, "Service", "my-api")
    assert find(m, "Deployment", "my-api")["metadata"]["labels"]["app.kubernetes.io/name"] == "my-api"


def test_service_ports(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          dns:
            image: pihole
            ports: ["53:53/tcp", "53:53/udp", "127.0.0.1:8080:80", "3000-3001"]
            expose: ["9100"]
          named:
            image: x
            ports: [{target: 8443, published: "443", name: https}]
    """)
    ports = find(m, "Service", "dns")["spec"]["ports"]
    assert [(p["port"], p["protocol"]) for p in ports] == [
        (53, "TCP"), (53, "UDP"), (80, "TCP"), (3000, "TCP"), (3001, "TCP"), (9100, "TCP")]
    assert all("hostIP" not in str(p) and p["port"] != 8080 for p in ports)
    assert find(m, "Service", "named")["spec"]["ports"][0]["name"] == "https"


def test_referenced_services_get_a_service(tmp_path):
    project, m = convert_compose(tmp_path, """
        services:
          app:
            image: app
            environment:
              DATABASE_URL: postgres://u@db:5433/app
              CACHE_HOST: cache
              QUEUE: worker
          db: {image: custom-db}
          cache: {image: redis:7}
          worker: {image: custom-worker}
    """)
    assert find(m, "Service", "db")["spec"]["ports"][0]["port"] == 5433    # from the URL
    assert find(m, "Service", "cache")["spec"]["ports"][0]["port"] == 6379 # the image default
    assert find(m, "Service", "worker") is None
    assert ("worker", "no-port") in codes(m) and ("cache", "port-assumed") in codes(m)


# -- configuration ---------------------------------------------------------------------------------
def test_env_configmap_and_secret_template(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          api:
            image: app
            environment:
              LOG_LEVEL: info
              API_TOKEN: ${API_TOKEN}
              DB_URL: postgres://u:${DB_PASSWORD}@db/app
    """, files={".env.secrets": "API_TOKEN=tok-123456\nDB_PASSWORD=pw-abcdef\n"})
    container = pod(find(m, "Deployment", "api"))["containers"][0]
    assert find(m, "ConfigMap", "api-env")["data"] == {"LOG_LEVEL": "info"}
    assert container["envFrom"] == [{"configMapRef": {"name": "api-env"}}]
    assert [e["name"] for e in container["env"]] == ["API_TOKEN", "DB_URL"]
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "api-secrets", "key": "API_TOKEN"}
    assert m.secrets[0]["stringData"] == {"API_TOKEN": "", "DB_URL": ""}
    assert "tok-123456" not in str(m.all()) and "pw-abcdef" not in str(m.all() + m.secrets)


def test_include_secrets_puts_values_in(tmp_path):
    _, m = convert_compose(tmp_path, "services:\n  api:\n    image: a\n    environment: {PASSWORD: s3cret-1}\n",
                           include_secrets=True)
    assert m.secrets[0]["stringData"] == {"PASSWORD": "s3cret-1"}


def test_compose_secrets_and_configs(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          api:
            image: app
            secrets: [db_pw, {source: api_key, target: /etc/key, mode: 0400}]
            configs: [{source: app_conf, target: /etc/app.conf}, inline]
        secrets:
          db_pw: {file: ./db_pw.txt}
          api_key: {environment: API_KEY}
        configs:
          app_conf: {file: ./app.conf}
          inline: {content: "a=1"}
    """, files={"db_pw.txt": "hunter2-xyz", "app.conf": "listen 80\n"})
    spec = pod(find(m, "Deployment", "api"))
    mounts = {v["mountPath"]: v for v in spec["containers"][0]["volumeMounts"]}
    assert mounts["/run/secrets/db_pw"]["subPath"] == "db_pw"
    assert mounts["/etc/key"]["readOnly"] is True
    assert find(m, "ConfigMap", "config-app-conf")["data"] == {"app_conf": "listen 80\n"}
    assert find(m, "ConfigMap", "config-inline")["data"] == {"inline": "a=1"}
    assert {s["metadata"]["name"] for s in m.secrets} == {"db-pw", "api-key"}
    assert "hunter2-xyz" not in str(m.all() + m.secrets)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["secret-api-key"]["secret"]["defaultMode"] == 0o400


def test_bind_mounts_volumes_and_tmpfs(tmp_path):
    project, m = convert_compose(tmp_path, """
        services:
          web:
            image: nginx
            volumes:
              - ./nginx.conf:/etc/nginx/nginx.conf:ro
              - ./html:/usr/share/nginx/html:ro
              - ./missing:/data
              - cache:/var/cache/nginx
              - /var/run/docker.sock:/var/run/docker.sock
              - {type: tmpfs, target: /tmp, tmpfs: {size: 64m}}
            shm_size: 256m
        volumes: {cache: {}}
    """, files={"nginx.conf": "events {}\n", "html/index.html": "<h1>hi</h1>\n", "html/css/a.css": "p{}\n"})
    spec = pod(find(m, "Deployment", "web"))
    mounts = {mt["mountPath"]: mt for mt in spec["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    conf = find(m, "ConfigMap", "web-nginx-conf")
    assert conf["data"] == {"nginx.conf": "events {}\n"}
    assert mounts["/etc/nginx/nginx.conf"]["subPath"] == "nginx.conf"
    html = find(m, "ConfigMap", "web-html")
    assert html["data"] == {"css__a.css": "p{}\n", "index.html": "<h1>hi</h1>\n"}
    assert volumes["web-html"]["configMap"]["items"] == [{"key": "css__a.css", "path": "css/a.css"},
                                                         {"key": "index.html", "path": "index.html"}]
    assert find(m, "PersistentVolumeClaim", "web-missing")["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert find(m, "PersistentVolumeClaim", "cache") is not None
    assert volumes[mounts["/var/run/docker.sock"]["name"]]["hostPath"] == {"path": "/var/run/docker.sock"}
    assert volumes[mounts["/tmp"]["name"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Mi"}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "256Mi"}
    assert {("web", "bind-to-pvc"), ("web", "host-path")} <= codes(m)


def test_user_and_group_names(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          both: {image: a, user: "app:www-data"}
          group: {image: a, user: "1000:www-data"}
          root: {image: a, user: "root:root"}
          answered: {image: a, user: "app:www-data", x-nself: {run_as_user: 33, run_as_group: 33}}
    """)
    security = {n: pod(find(m, "Deployment", n))["containers"][0].get("securityContext", {})
                for n in ("both", "group", "root", "answered")}
    assert security["group"] == {"runAsUser": 1000} and security["root"] == {"runAsUser": 0, "runAsGroup": 0}
    assert pod(find(m, "Deployment", "answered"))["securityContext"]["runAsUser"] == 33
    warned = {w.service: w.message for w in m.warnings if w.code == "user-name"}
    assert set(warned) == {"both", "group"}                 # root is 0 everywhere; x-nself answers
    assert "user 'app' and group 'www-data'" in warned["both"] and "run_as_user" in warned["both"]
    assert warned["group"].startswith("group 'www-data'")


def test_network_aliases_get_services(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          web:
            image: nginx
            ports: ["8080:80"]
            networks:
              front: {aliases: [api, old_name, db, web]}
              back: {aliases: [api, api-v1]}
          db: {image: "postgres:16"}
          other: {image: a, expose: ["9000"], networks: {front: {aliases: [api-v1]}}}
        networks: {front: {}, back: {}}
    """)
    services = {o["metadata"]["name"]: o for o in find(m, "Service")}
    assert {"web", "api", "api-v1", "other"} <= set(services)
    assert "old_name" not in services and "old-name" not in services
    for alias in ("api", "api-v1"):
        assert services[alias]["spec"] == services["web"]["spec"]   # same pods, same ports
    warned = sorted(w.message for w in m.warnings if w.code == "alias-name")
    assert len(warned) == 3 and "'old-name'" in warned[-1]          # db and other's api-v1 taken
    assert sum("already the name of a Service" in w for w in warned) == 2


def test_references_to_a_renamed_service_follow_the_rename(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          app_db: {image: "postgres:16", environment: {POSTGRES_DB: app_db}}
          web:
            image: a
            environment:
              DATABASE_URL: postgres://u:pw@app_db:5432/app_db
              DB_HOST: app_db
              CACHE: "app_db:6379"
              NOTE: my_app_db is a name
    """, include_secrets=True)
    env = find(m, "ConfigMap", "web-env")["data"]
    secret = next(s for s in m.secrets if s["metadata"]["name"] == "web-secrets")["stringData"]
    assert secret["DATABASE_URL"] == "postgres://u:pw@app-db:5432/app_db"   # the host only
    assert env["DB_HOST"] == "app-db" and env["CACHE"] == "app-db:6379"
    assert env["NOTE"] == "my_app_db is a name"
    assert find(m, "ConfigMap", "app-db-env")["data"] == {"POSTGRES_DB": "app_db"}  # a database


def test_tmpfs_size_and_mode(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          web:
            image: nginx
            tmpfs: ["/run:size=8m,mode=1777"]
            volumes: [{type: tmpfs, target: /secret, tmpfs: {size: 1m, mode: 0700}}]
    """)
    spec = pod(find(m, "Deployment", "web"))
    mounts = {mt["mountPath"]: mt["name"] for mt in spec["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/run"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "8Mi"}
    assert volumes[mounts["/secret"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1Mi"}
    warned = [w for w in m.warnings if w.code == "tmpfs-mode"]
    assert [(w.service, w.key) for w in warned] == [("web", "tmpfs./secret")]   # 1777 ⊇ 0777: fine
    assert "0700" in warned[0].message


def test_project_directory_is_never_put_in_a_configmap(tmp_path):
    _, m = convert_compose(tmp_path, "services:\n  admin:\n    image: a\n    volumes: ['./:/workspace']\n",
                           files={".env": "SECRET_KEY=abcdefgh\n"})
    assert ("admin", "project-mount") in codes(m)
    assert "abcdefgh" not in str(m.all())


# -- health ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("test, handler", [
    ('["CMD", "pg_isready", "-U", "app"]', {"exec": {"command": ["pg_isready", "-U", "app"]}}),
    ('["CMD-SHELL", "pg_isready -U app || exit 1"]',
     {"exec": {"command": ["sh", "-c", "pg_isready -U app || exit 1"]}}),
    ('"redis-cli ping"', {"exec": {"command": ["sh", "-c", "redis-cli ping"]}}),
    ('["CMD", "curl", "-f", "http://localhost:8080/healthz"]', {"httpGet": {"path": "/healthz", "port": 8080}}),
    ('["CMD-SHELL", "wget -q --spider http://127.0.0.1/ready?x=1 || exit 1"]',
     {"httpGet": {"path": "/ready?x=1", "port": 80}}),
    ('["CMD", "curl", "-f", "-H", "X: y", "http://localhost/"]',
     {"exec": {"command": ["curl", "-f", "-H", "X: y", "http://localhost/"]}}),
    ('["CMD", "curl", "-f", "http://other:80/"]', {"exec": {"command": ["curl", "-f", "http://other:80/"]}}),
])
def test_probe_handlers(tmp_path, test, handler):
    _, m = convert_compose(tmp_path, f"services:\n  a:\n    image: x\n    healthcheck:\n      test: {test}\n")
    container = pod(find(m, "Deployment", "a"))["containers"][0]
    assert {k: v for k, v in container["readinessProbe"].items() if k in ("exec", "httpGet")} == handler
    assert container["livenessProbe"]["failureThreshold"] == 3


def test_probe_timing_start_period_and_disable(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          a:
            image: x
            healthcheck: {test: [CMD, "true"], interval: 15s, timeout: 3s, retries: 4, start_period: 60s}
          b:
            image: x
            healthcheck: {disable: true}
    """)
    a = pod(find(m, "Deployment", "a"))["containers"][0]
    assert (a["livenessProbe"]["periodSeconds"], a["livenessProbe"]["timeoutSeconds"],
            a["livenessProbe"]["failureThreshold"]) == (15, 3, 4)
    assert a["startupProbe"]["periodSeconds"] * a["startupProbe"]["failureThreshold"] >= 60
    b = pod(find(m, "Deployment", "b"))["containers"][0]
    assert "livenessProbe" not in b and "readinessProbe" not in b


# -- ordering ---------------------------------------------------------------------------------------
def test_depends_on_waits_for_the_service_port(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          db: {image: postgres:16, expose: ["5432"]}
          api:
            image: app
            depends_on: {db: {condition: service_healthy}}
    """)
    init = pod(find(m, "Deployment", "api"))["initContainers"]
    assert init[0]["name"] == "wait-for-db" and "nc -z -w 2 db 5432" in init[0]["command"][2]


def test_dependency_cycle_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="depends_on cycle: a -> b -> c -> a"):
        convert_compose(tmp_path, """
            services:
              a: {image: x, depends_on: [b]}
              b: {image: x, depends_on: [c]}
              c: {image: x, depends_on: [a]}
        """)


# -- resources and scale ----------------------------------------------------------------------------
def test_resources_replicas_and_presets(tmp_path):
    compose = """
        services:
          explicit:
            image: x
            deploy: {replicas: 3, resources: {limits: {cpus: "1.5", memory: 512M}, reservations: {memory: 128M}}}
          legacy: {image: x, mem_limit: 1g, cpus: 0.25}
          preset: {image: x}
          plain: {image: x}
    """
    nself_yml = ("kubernetes:\n  generate:\n    resources: {preset: large}\n"
                 "    replicas: {default: 2, preset: 4}\n")
    _, m = convert_compose(tmp_path, compose, files={"nself.yml": nself_yml})
    spec = {o["metadata"]["name"]: o["spec"] for o in find(m, "Deployment")}
    res = {n: s["template"]["spec"]["containers"][0].get("resources") for n, s in spec.items()}
    assert res["explicit"] == {"requests": {"memory": "128Mi"}, "limits": {"cpu": "1500m", "memory": "512Mi"}}
    assert res["legacy"] == {"limits": {"cpu": "250m", "memory": "1Gi"}}
    assert res["preset"] == {"requests": {"cpu": "500m", "memory": "512Mi"},
                             "limits": {"cpu": "2", "memory": "2Gi"}}
    assert res["plain"] is None
    assert {n: s["replicas"] for n, s in spec.items()} == {"explicit": 3, "legacy": 2, "preset": 4, "plain": 2}
    assert {o["metadata"]["name"] for o in find(m, "PodDisruptionBudget")} == {"explicit", "legacy", "preset", "plain"}


def test_environment_overlay_presets_hpa_and_pdb(tmp_path):
    compose = "services:\n  web:\n    image: nginx:1.27\n    ports: ['80:80']\n  db:\n    image: postgres\n"
    _, m = convert_compose(tmp_path, compose, overlay="production")
    web = find(m, "Deployment", "web")
    assert web["spec"]["replicas"] == 2
    assert web["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "2Gi"
    hpa = find(m, "HorizontalPodAutoscaler", "web")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert find(m, "PodDisruptionBudget", "web")["spec"]["minAvailable"] == 1
    assert ("db", "unpinned-image") in codes(m)
    _, local = convert_compose(tmp_path / "l", compose, overlay="local")
    assert find(local, "HorizontalPodAutoscaler", "web") is None and find(local, "Ingress", "web") is None


# -- traffic and policy -------------------------------------------------------------------------------
def test_ingress_for_public_services(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          web: {image: nginx, ports: ["80:80"]}
          admin: {image: a, ports: ["127.0.0.1:80:80"]}
          api:
            image: a
            expose: ["8000"]
            x-nself: {ingress: {host: api.example.com, path: /v1, annotations: {a/b: c}}}
    """, overlay="staging", files={".env": "BASE_DOMAIN=example.org\n"})
    web = find(m, "Ingress", "web")
    assert web["spec"]["rules"][0]["host"] == "web.example.org"
    assert web["spec"]["ingressClassName"] == "nginx"
    assert web["spec"]["tls"] == [{"hosts": ["web.example.org"], "secretName": "web-tls"}]
    assert web["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-staging"
    api = find(m, "Ingress", "api")
    assert api["spec"]["rules"][0]["host"] == "api.example.com"
    assert api["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/v1"
    assert api["metadata"]["annotations"]["a/b"] == "c"
    assert find(m, "Ingress", "admin") is None            # bound to loopback: not public
    assert ("web", "ingress-host") not in codes(m)


def test_an_ingress_without_host_is_warned_and_gets_no_certificate(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          web: {image: nginx, ports: ["80:80"], x-nself: {ingress: {annotations: {a/b: c}}}}
    """, overlay="production")
    web = find(m, "Ingress", "web")
    assert "host" not in web["spec"]["rules"][0] and "tls" not in web["spec"]
    assert web["metadata"]["annotations"] == {"a/b": "c"}   # no cert-manager issuer for no name
    assert ("web", "ingress-host") in codes(m)


def test_network_policy_per_network_and_opt_out(tmp_path):
    compose = """
        services:
          web: {image: a, networks: [front, back]}
          db: {image: b, networks: [back]}
        networks: {front: {}, back: {}}
    """
    _, m = convert_compose(tmp_path, compose)
    names = {o["metadata"]["name"] for o in find(m, "NetworkPolicy")}
    assert names == {"network-front", "network-back"}
    labels = find(m, "Deployment", "web")["spec"]["template"]["metadata"]["labels"]
    assert labels["nself.io/network-front"] == labels["nself.io/network-back"] == "true"
    _, off = convert_compose(tmp_path / "off", compose,
                             files={"nself.yml": "kubernetes:\n  generate:\n    network_policies: false\n"})
    assert find(off, "NetworkPolicy") == []


def test_placement_security_and_labels(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          a:
            image: x
            user: "1001:1002"
            cap_add: [NET_ADMIN]
            cap_drop: [ALL]
            read_only: true
            privileged: true
            stop_grace_period: 1m
            extra_hosts: ["db.local=10.0.0.5"]
            deploy:
              placement:
                constraints: ["node.labels.disk == ssd", "node.hostname != n1", "node.role == manager"]
                preferences: [{spread: node.labels.zone}]
            labels: {team: core}
    """)
    workload = find(m, "Deployment", "a")
    spec = pod(workload)
    sc = spec["containers"][0]["securityContext"]
    assert sc == {"runAsUser": 1001, "runAsGroup": 1002,
                  "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                  "privileged": True, "readOnlyRootFilesystem": True}
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "disk", "operator": "In", "values": ["ssd"]},
        {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["n1"]}]
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "zone"
    assert spec["terminationGracePeriodSeconds"] == 60
    assert spec["hostAliases"] == [{"ip": "10.0.0.5", "hostnames": ["db.local"]}]
    assert workload["spec"]["template"]["metadata"]["annotations"] == {"team": "core"}
    assert ("a", "placement") in codes(m)
    assert set(workload["metadata"]["labels"]) == {
        "app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
        "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"}


def test_network_mode_service_becomes_a_sidecar(tmp_path):
    _, m = convert_compose(tmp_path, """
        services:
          vpn: {image: wireguard, ports: ["51820:51820/udp"]}
          app: {image: app, network_mode: "service:vpn"}
    """)
    assert find(m, "Deployment", "app") is None
    assert [c["name"] for c in pod(find(m, "Deployment", "vpn"))["containers"]] == ["vpn", "app"]


def test_a_sidecar_gets_every_step_of_a_container(tmp_path):
    """One builder for every container of a pod: a sidecar's compose secret is mounted AND
    its Secret produced; its env, probes, security and claims are its own (issue 21 kind 11)."""
    _, m = convert_compose(tmp_path, """
        services:
          vpn: {image: wireguard, ports: ["51820:51820/udp"], environment: {REGION: eu}}
          app:
            image: app
            network_mode: "service:vpn"
            secrets: [app_token]
            environment: {API_PASSWORD: pw-123456, MODE: fast}
            cap_add: [cap_net_admin]
            healthcheck: {test: ["CMD", "true"], interval: 10s}
            volumes: [appdata:/data]
        secrets:
          app_token: {file: ./token.txt}
        volumes:
          appdata: {}
    """, files={"token.txt": "tok-abcdef"}, include_secrets=True)
    vpn, app = pod(find(m, "Deployment", "vpn"))["containers"]
    assert {s["metadata"]["name"] for s in m.secrets} == {"app-token", "app-secrets"}
    assert {v["mountPath"] for v in app["volumeMounts"]} == {"/run/secrets/app_token", "/data"}
    assert app["envFrom"] == [{"configMapRef": {"name": "app-env"}}]
    assert app["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "app-secrets", "key": "API_PASSWORD"}
    assert app["securityContext"]["capabilities"]["add"] == ["NET_ADMIN"]
    assert "readinessProbe" in app and "ports" not in app
    assert vpn["envFrom"] == [{"configMapRef": {"name": "vpn-env"}}]
    assert find(m, "PersistentVolumeClaim", "appdata") is not None
    assert set(find(m, "Deployment", "vpn")["spec"]["template"]["metadata"]["annotations"]) == \
        {"checksum/config"}


def test_unmapped_keys_are_warned(tmp_path):
    project, m = convert_compose(tmp_path, """
        services:
          a: {image: x, ulimits: {nofile: 1024}, logging: {driver: json-file}, stop_signal: SIGINT}
    """)
    found = codes(m, project)
    assert {("a", "not-converted"), ("a", "not-carried")} <= found
