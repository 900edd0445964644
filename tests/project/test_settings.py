import pytest

from nself.errors import ConfigError
from nself.project import settings

PLAN_EXAMPLE = """\
version: "1"
project:
  name: myapp
environments:
  default: local
  staging: {namespace: myapp-staging, context: stg, pass_env: [CI_SHA]}
kubernetes:
  generate:
    namespace: myapp
    ingress: nginx
    replicas: {default: 1, hasura: 2}
    resources: {postgres: large, hasura: medium}
helm:
  chart: {name: myapp, version: "1.0.0"}
providers: {default: hetzner, staging: digitalocean, production: aws}
sync:
  exclude: ["*.log", node_modules, .git]
deploy:
  hooks:
    pre-deploy: [nself db backup, npm run test]
    post-deploy: [nself health check]
    on-rollback: [nself db restore latest]
servers:
  web1: {host: 127.0.0.1, port: 2222, user: deploy, roles: [web]}
run: {echo: true}
k8s: {k3s_installer: "http://127.0.0.1:9/k3s"}
x-anchors: {a: 1}
"""


def load(tmp_path, text):
    (tmp_path / "nself.yml").write_text(text)
    return settings.load(tmp_path)


def test_the_product_plan_example_is_valid(tmp_path):
    s = load(tmp_path, PLAN_EXAMPLE)
    assert s.section("kubernetes", "generate", "replicas", "hasura") == 2
    assert s.env_target("staging")["pass_env"] == ["CI_SHA"]
    assert s.section("nope", "deeper") is None


def test_no_file_means_empty_settings(tmp_path):
    assert settings.load(tmp_path).data == {}


def problems(tmp_path, text):
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text)
    assert exc.value.code == 3
    return exc.value.details


def test_unknown_top_level_key_suggests(tmp_path):
    assert problems(tmp_path, "project: {name: a}\nenviroments: {}\n") == \
        ["nself.yml:2: unknown key 'enviroments' (did you mean 'environments'?)"]


def test_every_problem_is_reported_with_path_and_line(tmp_path):
    found = problems(tmp_path, "kubernetes:\n  generate:\n    replicas: {web: many}\n"
                               "    resources: {db: huge}\n    nmespace: x\n"
                               "helm:\n  chart:\n    name: Bad Name\n")
    assert "nself.yml:3: kubernetes.generate.replicas.web: expected integer, got 'many'" in found
    assert any(p.startswith("nself.yml:4: kubernetes.generate.resources.db: 'huge' is not one of")
               for p in found)
    assert "nself.yml:5: unknown key 'kubernetes.generate.nmespace' (did you mean 'namespace'?)" in found
    assert any(p.startswith("nself.yml:8: helm.chart.name") for p in found)


def test_malformed_yaml_names_line(tmp_path):
    with pytest.raises(ConfigError, match=r"nself.yml:3:\d+: nself.yml is not valid YAML.*"
                                          r"flow sequence that starts at line 2"):
        load(tmp_path, "project:\n  name: [unclosed\n")


def test_top_level_must_be_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="must be a mapping"):
        load(tmp_path, "- a\n- b\n")
