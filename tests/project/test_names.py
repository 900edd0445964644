import pytest

from nself.errors import ConfigError
from nself.project.names import is_dns1035, object_names, to_dns1035


@pytest.mark.parametrize("name, expected", [
    ("web", "web"), ("my_Service.v2", "my-service-v2"), ("9gag", "s-9gag"),
    ("--x--", "x"), ("a" * 80, "a" * 63), ("___", "s"), ("minio-init", "minio-init"),
])
def test_to_dns1035(name, expected):
    assert to_dns1035(name) == expected
    assert is_dns1035(to_dns1035(name))


def test_renames_are_warned_and_collisions_refused():
    names, warnings = object_names(["web", "my_api"])
    assert names == {"web": "web", "my_api": "my-api"}
    assert [(w.service, w.code) for w in warnings] == [("my_api", "renamed")]
    with pytest.raises(ConfigError, match="'my_api' and 'my.api' both become 'my-api'"):
        object_names(["my_api", "my.api"])


@pytest.mark.parametrize("name, expected", [
    ("a--b", "a-b"), ("a-_-b", "a-b"), ("a" * 62 + "_b", "a" * 62), ("Web-", "web"),
])
def test_dashes_collapse_and_never_end_a_name(name, expected):
    assert to_dns1035(name) == expected


@pytest.mark.parametrize("name", ["9gag", "-web", "web-", "my_api", "Web", "a" * 64, ""])
def test_names_kubernetes_refuses_are_not_dns1035(name):
    assert not is_dns1035(name)


def test_is_dns1035_accepts_the_longest_label():
    assert is_dns1035("a" * 63) and is_dns1035("a-1")


def test_a_rename_says_what_follows_and_what_to_set():
    _, [warning] = object_names(["my_api"])
    assert warning.message == ("named 'my-api' in Kubernetes; host references in the compose environment "
                               "follow (URLs, host:port, *_HOST), but an image default or a config file "
                               "naming 'my_api' must be set to 'my-api'")


def test_a_collision_names_both_services_and_the_fix():
    with pytest.raises(ConfigError) as caught:
        object_names(["my_api", "my.api"])
    assert caught.value.message == "services 'my_api' and 'my.api' both become 'my-api' as Kubernetes names"
    assert caught.value.hint == "rename one of them in the compose file"
