"""SSH public keys as providers want them: the text, a name and the MD5 fingerprint that
Hetzner and DigitalOcean use to look a key up."""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from nself.errors import UsageError


def read_public_key(path: str | None) -> str:
    """--ssh-key takes a public key; a private key path means its `.pub`. Default: ~/.ssh/id_ed25519.pub,
    then id_rsa.pub."""
    defaults = [Path.home() / ".ssh" / n for n in ("id_ed25519.pub", "id_rsa.pub")]
    candidates = [Path(path).expanduser()] if path else defaults
    for candidate in candidates:
        if candidate.suffix != ".pub" and Path(str(candidate) + ".pub").is_file():
            candidate = Path(str(candidate) + ".pub")
        if candidate.is_file():
            text = candidate.read_text().strip()
            parts = text.split()
            if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
                raise UsageError(f"{candidate} is not an SSH public key",
                                 hint="pass the .pub file (ssh-keygen -t ed25519 makes one)")
            return text
    raise UsageError("no SSH public key found" + (f" at {path}" if path else " in ~/.ssh"),
                     hint="pass --ssh-key PATH, or create one: ssh-keygen -t ed25519")


def md5_fingerprint(public_key: str) -> str:
    blob = base64.b64decode(public_key.split()[1])
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def key_name(public_key: str) -> str:
    """A stable name for the key registered at the provider."""
    return "nself-" + md5_fingerprint(public_key).replace(":", "")[:12]


def private_key_path(path: str | None) -> str | None:
    """The private key next to a --ssh-key public key, for the inventory (None: the defaults)."""
    if not path:
        return None
    private = path[:-4] if path.endswith(".pub") else path
    return private if Path(private).expanduser().is_file() else None
