"""JobRunner: the supervised task that runs report and export jobs and expires their files.

Jobs are rows in the store, so none is lost to a restart: at start, jobs an
ended process left running are queued again (or failed, once the process has
ended during one of them `MAX_INTERRUPTIONS` times: a job that crashes the
gateway must not crash it at every start) and files no ready job holds are
deleted. Then, one job at a time, oldest first: claim it (running),
write its file (`edge.reports`, `edge.exports`) in a worker thread, and mark
it ready with its event, or failed with the reason. Between jobs, ready
files past their expiry are deleted and their jobs marked expired. A stop
interrupts a run between store pages and hands the job back to the queue,
uncounted; it runs again at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Final

from edge.exports import write_export
from edge.job_files import JobFiles
from edge.models import now_ms
from edge.reports import Stopped, write_report
from edge.settings import Settings
from edge.store import Job, Store

log = logging.getLogger(__name__)

# Enough of a failure to tell why, not a traceback.
ERROR_MAX: Final = 500


class JobRunner:
    """Runs queued jobs one at a time and deletes expired files."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings.jobs
        self.files = JobFiles(settings.data_dir)
        self._stop = threading.Event()
        self._wake = asyncio.Event()

    def stop(self) -> None:
        """Ask the runner (and a run in progress) to end at the next page."""
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Recover what a stopped process left, then run jobs until stopped."""
        self._stop.clear()
        await asyncio.to_thread(self._recover)
        while not self._stop.is_set():
            await asyncio.to_thread(self.expire, now_ms())
            job = await asyncio.to_thread(self._store.claim_job)
            if job is not None:
                await asyncio.to_thread(self._run, job)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.poll_s)

    def _recover(self) -> None:
        queued, failed = self._store.requeue_running_jobs()
        for job in queued:
            log.info("%s %s was cut short when the gateway ended; it runs again", job.kind, job.id)
        for job in failed:
            log.error("%s %s failed: %s", job.kind, job.id, job.error)
        for name in self.files.leftovers(self._store.job_files()):
            self.files.delete(name)

    def _run(self, job: Job) -> None:
        name = self.files.name_for(job.kind, job.id)
        write = write_report if job.kind == "report" else write_export
        try:
            with self.files.writing(name) as out:
                counts = write(self._store, job, out, self._stop)
        except Stopped:
            self._store.release_job(job.id)
            return
        except Exception as error:
            log.warning("%s %s failed: %s", job.kind, job.id, error, exc_info=True)
            self._store.fail_job(job.id, f"{type(error).__name__}: {error}"[:ERROR_MAX])
            return
        keep_ms = int(self._settings.keep_s * 1000)
        self._store.finish_job(job.id, name, self.files.size(name), counts, keep_ms)
        log.info("%s %s is ready (%s)", job.kind, job.id, name)

    def expire(self, now: int) -> list[str]:
        """Delete the files of ready jobs past their expiry and mark them expired."""
        due = self._store.jobs_due_expiry(now)
        for job in due:
            if job.file is not None:
                self.files.delete(job.file)
        if due:
            self._store.mark_jobs_expired([j.id for j in due])
        return [j.id for j in due]
