"""kubectl's protobuf request bodies on the test Kubernetes API (nself.testing.kubeproto):
what `kubectl create` sends arrives as the object it means, and what the table lacks is refused
by name (415), never stored half-read."""
import shutil
import subprocess

import pytest

KUBECTL = shutil.which("kubectl")


def kubectl(kube_api, *args):
    done = subprocess.run([KUBECTL, "--kubeconfig", str(kube_api.config), *args], capture_output=True, text=True,
                          timeout=60)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def api(kube_api, tmp_path):
    kube_api.config = kube_api.kubeconfig(tmp_path / "kc" / "config")
    return kube_api


def only(api, kind, namespace=None):
    found = api.objects(kind, namespace)
    assert len(found) == 1, found
    return found[0]


def test_kubectl_create_sends_protobuf_and_the_objects_arrive_whole(api):
    assert kubectl(api, "create", "namespace", "shop") == (0, "namespace/shop created\n")
    assert only(api, "Namespace")["metadata"]["name"] == "shop"
    code, out = kubectl(api, "create", "deployment", "web", "--image=nginx:1.27", "--replicas=3", "--port=8080",
                        "-n", "shop")
    assert code == 0, out
    web = only(api, "Deployment", "shop")
    assert web["metadata"]["labels"] == {"app": "web"}
    assert web["spec"]["replicas"] == 3 and web["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert web["spec"]["template"] == {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
        {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 8080}]}]}}
    code, out = kubectl(api, "create", "configmap", "settings", "--from-literal=MODE=fast", "-n", "shop")
    assert code == 0, out
    assert only(api, "ConfigMap", "shop")["data"] == {"MODE": "fast"}
    code, out = kubectl(api, "create", "secret", "generic", "keys", "--from-literal=TOKEN=s3cret", "-n", "shop")
    assert code == 0, out
    assert only(api, "Secret", "shop")["data"] == {"TOKEN": "czNjcmV0"}        # base64 of the bytes


def test_a_kind_the_table_lacks_is_refused_by_name(api):
    assert kubectl(api, "create", "namespace", "shop")[0] == 0
    code, out = kubectl(api, "create", "service", "clusterip", "web", "--tcp=80:8080", "-n", "shop")
    assert code == 1 and "protobuf bodies of Service are not in this test server's table" in out
    assert api.objects("Service", "shop") == []
