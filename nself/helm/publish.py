"""Uploading a packaged chart to an HTTP chart repository (ChartMuseum's upload API)."""
from __future__ import annotations

import os
from pathlib import Path

from nself.errors import Exit, NselfError
from nself.plan import Step


def upload_step(archive: str, repository: str) -> Step:
    """The upload as a plan step: POST <repository>/api/charts, run through `upload`."""
    url = repository.rstrip("/") + "/api/charts"
    return Step(f"upload {Path(archive).name} to {repository}", "http", spec={"method": "POST", "url": url},
                call=lambda step: upload(archive, repository))


def upload(archive: str, repository: str, timeout: float = 60) -> None:
    """POST the .tgz to <repository>/api/charts. Credentials: HELM_REPO_USERNAME/PASSWORD."""
    import requests

    url = repository.rstrip("/") + "/api/charts"
    auth = None
    if os.environ.get("HELM_REPO_USERNAME"):
        auth = (os.environ["HELM_REPO_USERNAME"], os.environ.get("HELM_REPO_PASSWORD", ""))
    try:
        response = requests.post(url, data=Path(archive).read_bytes(), auth=auth, timeout=timeout,
                                 headers={"Content-Type": "application/gzip"})
    except requests.RequestException as exc:
        raise NselfError(f"cannot reach the chart repository {repository}: {type(exc).__name__}",
                         code=Exit.NETWORK, hint="check the URL and that the repository is up") from None
    if response.status_code in (401, 403):
        raise NselfError(f"the chart repository refused the upload ({response.status_code})",
                         code=Exit.PERMISSION, hint="set HELM_REPO_USERNAME and HELM_REPO_PASSWORD")
    if response.status_code == 409:
        raise NselfError(f"{Path(archive).name} already exists in {repository}", code=Exit.GENERAL,
                         hint="bump the chart version (helm.push --version X.Y.Z)")
    if response.status_code >= 300:
        raise NselfError(f"the chart repository answered {response.status_code}: "
                         f"{response.text[:200]}", code=Exit.GENERAL,
                         hint="check the repository's upload API (ChartMuseum: POST /api/charts)")
