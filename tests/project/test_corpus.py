"""Every real-world compose project of the shared corpus loads, or fails with the right error."""
import pytest

from conftest import CORPUS, STACK, copy_tree
from nself.errors import ConfigError
from nself.project import load_project

CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
# Cases that docker compose itself rejects, and the reason it gives.
REJECTED = {"kompose-full-example": "service 'foo' depends on undefined service 'db'"}


def test_corpus_is_there():
    assert len(CASES) == 40


@pytest.mark.parametrize("case", CASES)
def test_case_loads_or_fails_clearly(case):
    if case in REJECTED:
        with pytest.raises(ConfigError) as exc:
            load_project(CORPUS / case, process_env={})
        assert REJECTED[case] in exc.value.message and exc.value.hint
        return
    project = load_project(CORPUS / case, process_env={})
    assert project.services
    for svc in project.services.values():
        assert svc.image or svc.build, f"{svc.name} has neither image nor build"


def test_nself_stack():
    project = load_project(STACK, process_env={})
    assert len(project.services) == 24            # 25 minus one behind a profile
    assert len(load_project(STACK, profiles=["*"], process_env={}).services) == 25
    hasura = project.services["hasura"]
    assert hasura.environment["HASURA_GRAPHQL_DATABASE_URL"].startswith("postgresql://postgres:")
    assert {"HASURA_GRAPHQL_DATABASE_URL", "HASURA_GRAPHQL_ADMIN_SECRET",
            "HASURA_GRAPHQL_JWT_SECRET"} <= hasura.secret_env
    assert project.services["postgres"].healthcheck.shell
    assert project.name == "acme"


def test_compose_go_extends_resolves_paths_from_the_extended_file():
    svc = load_project(CORPUS / "compose-go-extends", process_env={}).services["importer"]
    assert svc.image == "nginx"
    assert svc.environment["SOURCE"] == "extends"          # subdir/extra.env
    assert svc.volumes[0].source == "/opt/data"


def test_compose_go_include_extends():
    project = load_project(CORPUS / "compose-go-include-extends", process_env={})
    svc = project.services["service"]
    assert svc.build.context == str((CORPUS / "compose-go-include-extends" / "dir").resolve())


def test_kompose_multiple_files_merge_like_kompose_expects():
    case = CORPUS / "kompose-multiple-files"
    project = load_project(case, files=["docker-compose.yml", "second.yaml"], process_env={})
    assert project.services["foo"].deploy.replicas == 3
    assert project.services["bar"].deploy.replicas == 99
    assert project.services["bar"].image == "bar"


def test_kompose_envfile_interpolation():
    project = load_project(CORPUS / "kompose-envfile-interpolation", process_env={})
    minio = project.services["minio"]
    assert minio.environment["DOC_ENGINE"] == "test-env"   # environment beats env_file
    assert minio.environment["COMPOSE_PROFILES"] == "elasticsearch"
    assert [p.published for p in minio.ports] == ["9000", "9001"]
    assert minio.command == ("server", "--console-address", ":9001", "/data")


def test_compose_profiles_variable_enables_profiles(tmp_path):
    root = copy_tree(CORPUS / "voting-app", tmp_path / "vote")
    assert "seed" not in load_project(root, process_env={}).services
    (root / ".env").write_text("COMPOSE_PROFILES=seed\n")
    assert "seed" in load_project(root, process_env={}).services
