"""Atomic remote writes (temp file + rename over SFTP) and reads."""
from __future__ import annotations

import io
import posixpath
import secrets
from typing import BinaryIO

from nself.errors import Exit, NselfError


def put(connection, data: bytes | BinaryIO, remote: str, mode: int = 0o644) -> None:
    """Write `remote` atomically: upload next to it, set the mode, rename over it.
    A failed upload leaves the old file as it was and no temp file behind."""
    sftp = connection.sftp()
    temp = posixpath.join(posixpath.dirname(remote) or ".",
                          f".{posixpath.basename(remote)}.nself-{secrets.token_hex(4)}")
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with sftp.open(temp, "wb") as handle:
            while chunk := source.read(65536):
                handle.write(chunk)
        sftp.chmod(temp, mode)
        sftp.posix_rename(temp, remote)
    except BaseException:
        try:
            sftp.remove(temp)
        except OSError:
            pass
        raise


def get(connection, remote: str) -> bytes:
    sftp = connection.sftp()
    try:
        with sftp.open(remote, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise NselfError(f"{remote} does not exist on {connection.host}", code=Exit.GENERAL,
                         hint="check the path") from None
