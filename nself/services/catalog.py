"""The optional services of the nself stack (product plan Part 3.2, `nself service …`).

Each one is a compose fragment shipped beside this module (`fragments/<name>.yml`, the same
blocks the project blueprint writes when `nself new` is asked for them; a test keeps the two
equal), the named volumes it mounts, the variables it adds to `.env` and the secrets it adds
to `.env.secrets`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nself.errors import UsageError

FRAGMENTS = Path(__file__).parent / "fragments"


@dataclass(frozen=True)
class Service:
    name: str            # the word of `nself service NAME`
    compose_name: str    # its key under `services:` in the compose file
    port: int            # the port it listens on inside the stack's network
    scheme: str = "http"
    variables: dict[str, str] = field(default_factory=dict)   # → .env (non-secret defaults)
    secrets: tuple[str, ...] = ()                             # → .env.secrets (random, 0600)

    @property
    def fragment_text(self) -> str:
        """The fragment as written into the compose file (its leading comment kept)."""
        return (FRAGMENTS / f"{self.name}.yml").read_text()

    @property
    def block(self) -> dict:
        """The service's compose definition, parsed."""
        return yaml.safe_load(self.fragment_text)[self.compose_name]

    @property
    def image(self) -> str:
        return self.block["image"]

    @property
    def volumes(self) -> list[str]:
        """Named volumes it mounts (`meili_data:/meili_data` → `meili_data`)."""
        return [v.split(":", 1)[0] for v in self.block.get("volumes", [])
                if isinstance(v, str) and not v.startswith((".", "/", "~"))]

    @property
    def url(self) -> str:
        """Where the other services reach it (the compose network's DNS name)."""
        return f"{self.scheme}://{self.compose_name}:{self.port}"


SERVICES: dict[str, Service] = {s.name: s for s in (
    Service("email", "mailpit", 8025,
            variables={"SMTP_HOST": "mailpit", "SMTP_PORT": "1025", "SMTP_FROM": "nself@localhost"}),
    Service("search", "meilisearch", 7700, variables={"MEILI_URL": "http://meilisearch:7700"},
            secrets=("MEILI_MASTER_KEY",)),
    Service("functions", "functions", 3000, variables={"FUNCTIONS_URL": "http://functions:3000"}),
    Service("mlflow", "mlflow", 5000, variables={"MLFLOW_TRACKING_URI": "http://mlflow:5000"}),
    Service("admin", "nself-admin", 3021, secrets=("NSELF_ADMIN_PASSWORD",)),
)}


def get(name: str) -> Service:
    """The service called `name`; UsageError (exit 2) listing the known ones otherwise."""
    if name not in SERVICES:
        import difflib

        close = difflib.get_close_matches(name, list(SERVICES), n=1)
        raise UsageError(f"unknown service {name!r}",
                         hint=(f"did you mean {close[0]!r}? " if close else "")
                         + "the optional services are " + ", ".join(SERVICES))
    return SERVICES[name]
