import pytest

from nself.errors import ConfigError, UsageError
from nself.project.envfiles import canonical_env, cascade, is_secret_name, load_env


def write(root, name, text):
    (root / name).write_text(text)


@pytest.mark.parametrize("env, files", [
    ("local", [".env", ".env.dev", ".env.secrets", ".env.local"]),
    ("staging", [".env", ".env.staging", ".env.secrets"]),
    ("production", [".env", ".env.prod", ".env.production", ".env.secrets"]),
])
def test_cascade_order(tmp_path, env, files):
    assert [p.name for p in cascade(tmp_path, env)] == files


@pytest.mark.parametrize("given, canonical", [("dev", "local"), ("prod", "production"),
                                               ("Staging", "staging"), ("local", "local")])
def test_aliases(given, canonical):
    assert canonical_env(given) == canonical


def test_unknown_and_invalid_environment_names():
    with pytest.raises(UsageError, match="unknown environment 'qa'"):
        canonical_env("qa")
    assert canonical_env("qa", known=["qa"]) == "qa"
    with pytest.raises(UsageError, match="invalid environment name"):
        canonical_env("../etc")


def test_later_files_win_and_example_is_never_loaded(tmp_path):
    write(tmp_path, ".env", "A=base\nB=base\nC=base\n")
    write(tmp_path, ".env.dev", "B=dev\n")
    write(tmp_path, ".env.secrets", "C=secret-value\n")
    write(tmp_path, ".env.local", "A=mine\n")
    write(tmp_path, ".env.example", "A=example\nONLY_EXAMPLE=1\n")
    env = load_env(tmp_path, "local", process_env={})
    assert dict(env.values) == {"A": "mine", "B": "dev", "C": "secret-value"}
    assert env.sources["A"] == ".env.local" and env.sources["B"] == ".env.dev"
    assert "C" in env.secrets
    assert [p.name for p in env.loaded] == [".env", ".env.dev", ".env.secrets", ".env.local"]


def test_env_local_is_only_for_local(tmp_path):
    write(tmp_path, ".env", "A=base\n")
    write(tmp_path, ".env.local", "A=mine\n")
    write(tmp_path, ".env.production", "A=prod\n")
    assert load_env(tmp_path, "production", process_env={}).values["A"] == "prod"
    assert load_env(tmp_path, "staging", process_env={}).values["A"] == "base"


def test_process_environment_overrides_only_for_local(tmp_path):
    write(tmp_path, ".env", "A=file\nB=file\n")
    outside = {"A": "shell", "CI_SHA": "abc", "HOME": "/root"}
    local = load_env(tmp_path, "local", process_env=outside)
    assert local.values["A"] == "shell"
    assert "HOME" not in local.values          # not a project variable…
    assert local.lookup["HOME"] == "/root"     # …but compose may interpolate it
    staging = load_env(tmp_path, "staging", process_env=outside, pass_env=["CI_SHA"])
    assert staging.values["A"] == "file"
    assert staging.values["CI_SHA"] == "abc"
    assert "HOME" not in staging.lookup


def test_interpolation_inside_env_files(tmp_path):
    write(tmp_path, ".env", "USER=app\nHOST=${DB_HOST:-db}\nURL=postgres://${USER}@${HOST}\n"
                            "LITERAL='$2b$12$abc'\nDOUBLE=\"x ${USER}\"\n")
    env = load_env(tmp_path, "staging", process_env={})
    assert env.values["URL"] == "postgres://app@db"
    assert env.values["LITERAL"] == "$2b$12$abc"       # single quotes: no interpolation
    assert env.values["DOUBLE"] == "x app"


def test_values_built_from_secrets_are_secret(tmp_path):
    write(tmp_path, ".env", "DB_USER=app\n")
    write(tmp_path, ".env.secrets", "DB_PW=s3cr3t-pw\n")
    write(tmp_path, ".env.staging", "DATABASE_URL=postgres://${DB_USER}:${DB_PW}@db/app\n"
                                    "COPY=prefix-s3cr3t-pw\nPLAIN=hello\n")
    env = load_env(tmp_path, "staging", process_env={})
    assert {"DB_PW", "DATABASE_URL", "COPY"} <= env.secrets
    assert "PLAIN" not in env.secrets and "DB_USER" not in env.secrets


@pytest.mark.parametrize("name, secret", [
    ("POSTGRES_PASSWORD", True), ("HASURA_GRAPHQL_ADMIN_SECRET", True), ("GITHUB_TOKEN", True),
    ("MEILI_MASTER_KEY", True), ("AUTH_SMTP_PASS", True), ("POSTGRES_PASSWORD_FILE", False),
    ("AUTH_ACCESS_TOKEN_EXPIRES_IN", False), ("SSH_KEY_PATH", False), ("POSTGRES_DB", False),
    ("KEYCLOAK_URL", False),
])
def test_secret_names(name, secret):
    assert is_secret_name(name) is secret


def test_malformed_env_file_names_file_and_line(tmp_path):
    write(tmp_path, ".env", "GOOD=1\nthis is not an assignment\n")
    with pytest.raises(ConfigError, match=r"\.env:2: cannot parse"):
        load_env(tmp_path, "local", process_env={})


def test_required_variable_in_env_file(tmp_path):
    write(tmp_path, ".env", "URL=${HOST:?HOST is needed}\n")
    with pytest.raises(ConfigError, match="HOST is unset in .env:1: HOST is needed"):
        load_env(tmp_path, "staging", process_env={})
