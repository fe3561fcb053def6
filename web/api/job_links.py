"""Download links of report and export files: signed, time-limited, and streamed when used.

A link is its own credential, as `/telemetry/export`'s are: `edge.signing`
signs the method, the path (`.../{id}/download` under the dialect's prefix),
the organization and the expiry, so the download route takes no API key. A
link lives `[jobs] link_ttl_s` (an hour), never past the file's own expiry;
every GET of a ready job answers a fresh one. The download checks the
signature and the expiry, then that the job is still ready, and streams the
file from an open handle, so an expiry sweep meanwhile cannot cut it short.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import BinaryIO, Final
from urllib.parse import quote, urlencode

from litestar import Request
from litestar.response import Stream

from edge.job_files import JobFiles
from edge.runtime import Runtime
from edge.signing import Signer
from edge.store import Job
from web.api import resources
from web.api.dialect import Dialect
from web.api.errors import ApiError

PATHS: Final = {"report": "/reports", "export": "/exports"}
MEDIA: Final = {"report": "text/csv", "export": "application/zip"}
CHUNK: Final = 65_536


def link(request: Request, dialect: Dialect, runtime: Runtime, job: Job) -> dict[str, str | None]:
    """`download_url` and `download_expires_at` of a ready job (both None otherwise)."""
    now = time.time()
    if job.status != "ready" or job.expires_at is None or job.expires_at <= now * 1000:
        return {"download_url": None, "download_expires_at": None}
    signer: Signer = request.app.state.signer
    expires_at = min(int(now + runtime.settings.jobs.link_ttl_s), job.expires_at // 1000)
    path = f"{dialect.prefix}{PATHS[job.kind]}/{job.id}/download"
    query = {"org_id": job.org_id}
    signature = signer.sign("GET", path, query, expires_at)
    signed = urlencode({**query, "expires": expires_at, "signature": signature}, quote_via=quote)
    return {
        "download_url": f"{str(request.base_url).rstrip('/')}{path}?{signed}",
        "download_expires_at": resources.iso(expires_at * 1000),
    }


def _org(request: Request) -> str:
    """The organization a valid, unexpired link names; 403 otherwise."""
    items = list(request.query_params.multi_items())
    query = dict(items)
    signature = query.pop("signature", "")
    expires = query.pop("expires", "")
    signer: Signer = request.app.state.signer
    valid = (
        len(items) == 3  # org_id, expires, signature: anything more was not signed
        and "org_id" in query
        and expires.isascii()
        and expires.isdigit()
        and signer.verify("GET", request.url.path, query, int(expires), signature)
    )
    if not valid:
        raise ApiError(403, "The download link is not valid or has expired; GET the report or "
                       "export again for a new one.")  # fmt: skip
    return query["org_id"]


async def download(request: Request, runtime: Runtime, kind: str, job_id: str) -> Stream:
    """The file a signed link names, streamed; 403 for a bad or expired link or file."""
    org = _org(request)
    job = await asyncio.to_thread(runtime.store.job_by_id, org, kind, job_id)
    if job.status != "ready" or job.file is None:
        raise ApiError(403, f"The {kind} file has expired; ask for a new {kind}.",
                       {"status": job.status})  # fmt: skip
    try:
        path = JobFiles(runtime.settings.data_dir).path(job.file)
        handle = await asyncio.to_thread(path.open, "rb")
    except FileNotFoundError:
        raise ApiError(403, f"The {kind} file has expired; ask for a new {kind}.") from None
    name = job.file.rsplit("/", 1)[-1]
    return Stream(_chunks(handle), media_type=MEDIA[kind],
                  headers={"Content-Disposition": f'attachment; filename="{name}"',
                           "Content-Length": str(job.size_bytes)})  # fmt: skip


async def _chunks(handle: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            yield chunk
    finally:
        handle.close()
