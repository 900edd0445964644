"""Secrecy by reference: a value built from a secret variable is secret, whether or not the
secret's text is distinctive enough to be found inside it. Checked on the model and on the
Kubernetes objects (the password must reach a Secret, never a ConfigMap)."""
from conftest import make_project
from nself.k8s.environment import env_objects
from nself.project import load_project

# "sesame" is too plain to be recognised inside another value (it could name a host): only the
# reference ${DB_PASSWORD} tells that DATABASE_URL carries it.
ENV = "DB_PASSWORD=sesame\nDB_USER=app\nDB_URL=postgres://app:${DB_PASSWORD}@db/app\n"


def load(tmp_path, environment: str):
    compose = f"services:\n  api:\n    image: api:1\n    environment:\n{environment}"
    return load_project(make_project(tmp_path / "app", compose, {".env": ENV}), process_env={})


def objects(project):
    svc = project.services["api"]
    configmap, secret, _ = env_objects(project, svc, [], include_secrets=True)
    return (configmap or {}).get("data", {}), (secret or {}).get("stringData", {})


def test_a_value_that_interpolates_a_secret_is_secret(tmp_path):
    project = load(tmp_path, "      DATABASE_URL: postgres://${DB_USER}:${DB_PASSWORD}@db:5432/app\n"
                             "      DB_HOST: db\n")
    assert project.services["api"].secret_env == {"DATABASE_URL"}
    plain, secret = objects(project)
    assert plain == {"DB_HOST": "db"}
    assert secret == {"DATABASE_URL": "postgres://app:sesame@db:5432/app"}


def test_secrecy_follows_a_chain_of_references(tmp_path):
    project = load(tmp_path, "      DATABASE_URL: ${DB_URL}\n      USER: ${DB_USER}\n")
    assert project.variables.secrets >= {"DB_PASSWORD", "DB_URL"} and "DB_USER" not in project.variables.secrets
    assert project.services["api"].secret_env == {"DATABASE_URL"}
    plain, secret = objects(project)
    assert plain == {"USER": "app"} and "sesame" not in str(plain)
    assert secret == {"DATABASE_URL": "postgres://app:sesame@db/app"}


def test_a_value_that_only_reads_plain_variables_stays_plain(tmp_path):
    project = load(tmp_path, "      DB_USER_COPY: ${DB_USER}\n")
    assert project.services["api"].secret_env == frozenset()
    assert objects(project) == ({"DB_USER_COPY": "app"}, {})
