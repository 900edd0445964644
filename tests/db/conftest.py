"""db tests run on sync's world: a real PostgreSQL 15 on this machine (`local`) and one inside
each of two networked sshd test hosts (`staging` on host1, `production` on host2)."""
from tests.sync.conftest import project, world  # noqa: F401 - the fixtures, shared
