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
