"""The test Kubernetes API refuses what a real API server refuses, and serves what the client
(nself.k8s.resources, a separate table) asks for under the same paths."""
import pytest
import requests

from nself.k8s.resources import RESOURCES

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}


@pytest.fixture
def api(kube_api):
    for ns in ("a", "b"):
        requests.post(f"{kube_api.url}/api/v1/namespaces", json={
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, timeout=10).raise_for_status()
    return kube_api


def post(api, path, body, **query):
    return requests.post(f"{api.url}{path}", json=body, params=query, timeout=10)


def test_a_valid_deployment_is_created(api):
    r = post(api, "/apis/apps/v1/namespaces/a/deployments", DEPLOYMENT)
    assert r.status_code == 201 and r.json()["metadata"]["namespace"] == "a"


def test_a_service_posted_to_the_deployments_path_is_refused(api):
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "b"},
               "spec": {"ports": [{"port": 80}]}}
    r = post(api, "/apis/apps/v1/namespaces/a/deployments", service)
    assert r.status_code == 400 and "kind of the object (Service)" in r.json()["message"]
    assert api.objects("Deployment") == [] and api.objects("Service") == []


def test_an_object_of_another_namespace_is_refused(api):
    body = {**DEPLOYMENT, "metadata": {"name": "web", "namespace": "b"}}
    r = post(api, "/apis/apps/v1/namespaces/a/deployments", body)
    assert r.status_code == 400 and "does not match the namespace" in r.json()["message"]


def test_a_body_the_schema_refuses_is_422(api):
    bad = {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replicas": "three"}}
    r = post(api, "/apis/apps/v1/namespaces/a/deployments", bad)
    assert r.status_code == 422 and "spec.replicas" in r.json()["message"]
    no_image = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{}]}}
    r = post(api, "/api/v1/namespaces/a/pods", no_image)
    assert r.status_code == 422 and "'name' is a required property" in r.json()["message"]


def test_unknown_fields_are_refused_only_with_strict_field_validation(api):
    extra = {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replica": 2}}
    r = post(api, "/apis/apps/v1/namespaces/a/deployments", extra, fieldValidation="Strict")
    assert r.status_code == 422 and "replica" in r.json()["message"]
    assert post(api, "/apis/apps/v1/namespaces/a/deployments", extra).status_code == 201


def test_a_patch_that_breaks_the_object_is_refused_and_changes_nothing(api):
    assert post(api, "/apis/apps/v1/namespaces/a/deployments", DEPLOYMENT).status_code == 201
    r = requests.patch(f"{api.url}/apis/apps/v1/namespaces/a/deployments/web", json={"spec": {"replicas": "x"}},
                       headers={"Content-Type": "application/merge-patch+json"}, timeout=10)
    assert r.status_code == 422
    [stored] = api.objects("Deployment", "a")
    assert "replicas" not in stored["spec"]


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.kind)
def test_every_kind_the_client_uses_is_served_under_its_path(api, res):
    r = requests.get(f"{api.url}{res.path('a')}", timeout=10)
    assert r.status_code == 200, f"{res.path('a')}: {r.status_code}"
    assert r.json()["kind"] == f"{res.kind}List" and r.json()["apiVersion"] == res.api_version
