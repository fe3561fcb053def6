"""Sync: the agent's state, the backlog over the last day, the quarantine (retry, discard),
and the upstream settings with "test connection".

The backlog is sampled every 30 s by a task the app starts, kept for 24 h in
memory: a restart begins a new history, which is what a technician watching
a recovery needs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import Any, Final

import httpx
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from edge.runtime import Runtime
from web.ui import data, pages, sessions

SAMPLE_S: Final = 30.0
KEEP: Final = int(86_400 / SAMPLE_S)
# The test reads one device: the agent's pulls need that much, and it changes nothing.
TEST_PATH: Final = "/devices?limit=1"
TEST_TIMEOUT_S: Final = 10.0
TECH: Final = {"role": "technician"}
ADMIN: Final = {"role": "admin"}


class BacklogHistory:
    """(epoch ms, readings waiting) samples of the sync backlog."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self.samples: collections.deque[tuple[int, int]] = collections.deque(maxlen=KEEP)
        self._task: asyncio.Task[None] | None = None

    def series(self) -> dict[str, Any]:
        """The samples as the chart takes them: epoch seconds over the last 24 h."""
        end = data.now() / 1000
        return {
            "t": [ms / 1000 for ms, _ in self.samples],
            "v": [n for _, n in self.samples],
            "start": end - 86_400,
            "end": end,
        }

    def sample(self) -> None:
        status = data.sync(self._runtime)
        if status is not None:
            self.samples.append((data.now(), int(status["backlog_readings"])))

    async def _run(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(SAMPLE_S)

    async def start(self, state: State | None = None) -> None:
        self._task = asyncio.create_task(self._run(), name="ui:backlog-history")

    async def stop(self, state: State | None = None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def context(runtime: Runtime, history: BacklogHistory, cursor: str | None) -> dict[str, Any]:
    """The agent's state, the backlog's history, a page of the quarantine, the settings."""
    store = runtime.store
    quarantine = store.quarantine_page(store.organization.id, cursor, 50)
    settings = runtime.settings.sync
    return {
        "sync": data.sync(runtime),
        "history": list(history.samples),
        "history_series": history.series(),
        "quarantine": quarantine.items,
        "next": quarantine.next_cursor,
        "quarantined": store.quarantine_count(),
        "now": data.now(),
        "upstream": {
            "url": settings.upstream_url,
            "tenant": settings.tenant,
            "key_set": bool(settings.api_key),
        },
        "test": None,
        "form": {},
    }


async def test_upstream(runtime: Runtime, form: dict[str, Any]) -> dict[str, Any]:
    """Ask an upstream (the form's, else the configured one) who the key is."""
    settings = runtime.settings.sync
    url = (str(form.get("url", "")).strip() or settings.upstream_url).rstrip("/")
    key = str(form.get("api_key", "")).strip() or settings.api_key
    tenant = str(form.get("tenant", "")).strip() or settings.tenant
    if not url.startswith(("http://", "https://")):
        return {"ok": False, "message": "Give the upstream's URL (http:// or https://...)."}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if tenant:
        headers["X-SGT-Tenant"] = tenant
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=TEST_TIMEOUT_S) as client:
            answer = await client.get(url + TEST_PATH, headers=headers)
    except httpx.HTTPError as error:
        return {"ok": False, "message": f"No answer from {url}: {error or type(error).__name__}."}
    ms = round((time.perf_counter() - started) * 1000)
    if answer.status_code == 200:
        return {"ok": True, "message": f"{url} answers and accepts the key ({ms} ms)."}
    words = {
        401: "refuses the key",
        403: "refuses the key or tenant (or the key lacks devices.read)",
        404: "has no /devices here: is the URL the /v1 base?",
    }.get(answer.status_code, "answers with an error")
    return {"ok": False, "message": f"{url} {words} (HTTP {answer.status_code}, {ms} ms)."}


def quarantine_action(runtime: Runtime, item_id: str, action: str, actor: str) -> str:
    """Retry or discard a quarantined reading; returns what was done."""
    store, org = runtime.store, runtime.store.organization.id
    if action == "retry":
        store.quarantine_retry(org, item_id)
        return "The reading is sent again on the agent's next pass."
    gone = store.quarantine_discard(org, item_id)
    store.record_event(
        org,
        "sync.quarantine_discarded",
        "info",
        f"A quarantined reading of {gone.device_id} {gone.metric} was discarded.",
        gone.device_id,
        {"actor": actor, "seq": gone.seq},
    )
    return "The reading was discarded for good."


class SyncController(Controller):
    """/sync."""

    path = "/sync"

    @get("/")
    async def sync_page(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        cursor: FromQuery[str | None] = None,
    ) -> Any:
        """State, backlog history, quarantine, upstream settings."""
        history = request.app.state.backlog_history
        return pages.page(
            request, "sync", await asyncio.to_thread(context, runtime, history, cursor)
        )

    @post("/test", opt=ADMIN)
    async def test(self, request: Request, runtime: NamedDependency[Runtime]) -> Any:
        """Try the upstream; the form stays as typed (the key is never shown back)."""
        form = dict(await request.form())
        found = await asyncio.to_thread(context, runtime, request.app.state.backlog_history, None)
        result = await test_upstream(runtime, form)
        shown = {k: v for k, v in form.items() if k in ("url", "tenant")}
        return pages.page(request, "sync", {**found, "test": result, "form": shown})

    @post("/quarantine/{item_id:str}/{action:str}", opt=TECH)
    async def quarantine(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        item_id: FromPath[str],
        action: FromPath[str],
    ) -> Any:
        """Retry or discard a quarantined reading, once confirmed."""
        form = dict(await request.form())
        if action not in ("retry", "discard"):
            return pages.failed(request, 404, "No such action", "Retry or discard only.")
        if not pages.confirmed(form):
            question = (
                "Send this reading upstream again?"
                if action == "retry"
                else "Discard this reading for good? It is never sent upstream."
            )
            return pages.confirm(
                request,
                question,
                f"/sync/quarantine/{item_id}/{action}",
                f"Yes, {action}",
                form,
                "/sync",
                danger=action == "discard",
            )
        said = await asyncio.to_thread(
            quarantine_action, runtime, item_id, action, sessions.of(request).user.username
        )
        return pages.done("/sync", said)
