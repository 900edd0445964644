"""Secrets and output fidelity (issue 21 kind 9): renderers write references, never secret
values, so what they print is the real output — no text replacement that turns
`image: postgres:16` into `image: [REDACTED]:16` — and values appear only where
`--include-secrets` asks (files then 0600)."""
import stat

import yaml

from conftest import make_project

# The password is also a word of the project ("postgres"): replacing it as text everywhere
# corrupted images and names. The URL password has no secret-looking variable name.
COMPOSE = """
    name: shop
    services:
      db:
        image: postgres:16
        environment: {POSTGRES_PASSWORD: "${POSTGRES_PASSWORD}", POSTGRES_USER: postgres}
      cache:
        image: redis:7
        command: ["redis-server", "--requirepass", "${REDIS_PASSWORD}"]
        healthcheck: {test: ["CMD", "redis-cli", "-a", "${REDIS_PASSWORD}", "ping"]}
      api:
        image: shop/api:1
        ports: ["8080:8080"]
        environment:
          CACHE_URL: "${CACHE_URL}"
          API_TOKEN: "${API_TOKEN}"
          DB_HOST: db
        secrets: [signing]
    secrets:
      signing: {file: ./signing.key}
"""
FILES = {
    ".env": "POSTGRES_PASSWORD=postgres\nREDIS_PASSWORD=rd-Secret-42\n"
            "CACHE_URL=redis://:Url-pw-9911@cache:6379/0\nAPI_TOKEN=dev-token-111\n",
    ".env.secrets": "API_TOKEN=prod-token-999\n",
    "signing.key": "signing-key-777\n",
}
SECRETS = ("rd-Secret-42", "Url-pw-9911", "prod-token-999", "dev-token-111", "signing-key-777")


def project(tmp_path):
    return make_project(tmp_path / "shop", COMPOSE, FILES)


def docs_of(text):
    return [d for d in yaml.safe_load_all(text) if d]


def test_plain_output_is_the_manifests_without_any_secret(tmp_path, nself):
    root = project(tmp_path)
    r = nself(["k8s.generate", "--plain"], cwd=root)
    assert r.code == 0, r.err
    assert "[REDACTED]" not in r.out and not any(s in r.out + r.err for s in SECRETS)
    docs = {(d["kind"], d["metadata"]["name"]): d for d in docs_of(r.out)}
    db = docs["Deployment", "db"]["spec"]["template"]["spec"]["containers"][0]
    assert db["image"] == "postgres:16"
    assert docs["Namespace", "shop-local"]
    cache = docs["Deployment", "cache"]["spec"]["template"]["spec"]["containers"][0]
    assert cache["args"] == ["redis-server", "--requirepass", "$(REDIS_PASSWORD)"]
    r = nself(["k8s.generate", "--plain", "--json"], cwd=root)
    assert r.code == 0 and "postgres:16" in r.json()["text"]
    assert not any(s in r.out for s in SECRETS)


def test_a_password_inside_a_url_is_a_secret(tmp_path, nself):
    root = project(tmp_path)
    r = nself(["k8s.generate", "--plain", "--include-secrets"], cwd=root)
    assert r.code == 0, r.err
    secrets = {d["metadata"]["name"]: d["stringData"] for d in docs_of(r.out) if d["kind"] == "Secret"}
    assert secrets["api-secrets"] == {"API_TOKEN": "prod-token-999",
                                      "CACHE_URL": "redis://:Url-pw-9911@cache:6379/0"}
    assert "dev-token-111" not in r.out    # .env.secrets wins; the .env value is gone
    r = nself(["config.show", "--json"], cwd=root)
    shown = r.json()
    assert shown["variables"]["CACHE_URL"] == "[REDACTED]"
    assert shown["services"]["db"]["image"] == "postgres:16"
    assert shown["services"]["db"]["environment"]["POSTGRES_USER"] == "postgres"
    assert "[REDACTED]" in shown["services"]["cache"]["healthcheck"]["test"]
    assert not any(s in r.out for s in SECRETS)


def test_helm_template_renders_empty_secrets_unless_asked(tmp_path, nself):
    root = project(tmp_path)
    assert nself(["helm.init"], cwd=root).code == 0
    r = nself(["helm.template"], cwd=root)
    assert r.code == 0, r.err
    assert "[REDACTED]" not in r.out and not any(s in r.out for s in SECRETS)
    images = {c["image"] for d in docs_of(r.out) if d["kind"] in ("Deployment", "StatefulSet")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert "postgres:16" in images
    r = nself(["helm.template", "--include-secrets", "--output-dir", "rendered"], cwd=root)
    assert r.code == 0, r.err
    assert not any(s in r.out + r.err for s in SECRETS)
    files = [p for p in (root / "rendered").rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert "prod-token-999" in "".join(p.read_text() for p in files)
