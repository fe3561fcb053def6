"""The Store's part for background jobs (report runs, exports) and annotations (SQL in
`_jobs` and `_annotations`)."""

from __future__ import annotations

from typing import Any

from edge.models import Boundary, Owner, Page
from edge.store import _annotations, _jobs
from edge.store._annotations import Annotation, AnnotationClass
from edge.store._facade import Facade
from edge.store._jobs import Job


class JobFacade(Facade):
    """Jobs from request to expiry, and the annotations exports carry."""

    def create_job(
        self,
        owner: Boundary,
        requested_by: str,
        kind: str,
        type_: str,
        scope: tuple[str | None, str | None],
        window: tuple[int, int],
        params: dict[str, Any],
    ) -> Job:
        """Queue a report (`kind` report) or export; Refused if the scope is outside `owner`."""
        return self._write(
            lambda c: _jobs.create(c, owner, requested_by, kind, type_, scope, window, params)
        )

    def job(self, owner: Boundary, kind: str, job_id: str) -> Job:
        """A job made within the owner's boundary, or NotFound."""
        return self._read(lambda c: _jobs.get(c, owner, kind, job_id))

    def job_by_id(self, org_id: str, kind: str, job_id: str) -> Job:
        """A job of the org, whoever made it (a signed link names it)."""
        return self._read(lambda c: _jobs.by_id(c, org_id, kind, job_id))

    def job_page(
        self,
        owner: Boundary,
        kind: str,
        status: str | None = None,
        updated_since: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """Jobs newest first; with updated_since, in (updated_at, id) order."""
        query = lambda c, after, n: _jobs.page(c, owner, kind, status, updated_since, after, n)  # noqa: E731
        if updated_since is not None:
            return self._updated_page(query, cursor, limit)
        return self._page(query, cursor, (int, str), lambda j: (j.created_at, j.id), limit)

    def requeue_running_jobs(self) -> tuple[list[Job], list[Job]]:
        """Queue again the jobs an ended process left running, or fail those it has ended
        during too often: (queued, failed)."""
        return self._write(_jobs.requeue_running)

    def release_job(self, job_id: str) -> Job:
        """Put a running job back in the queue as it was: its run was stopped, not cut short."""
        return self._write(lambda c: _jobs.release(c, job_id))

    def claim_job(self) -> Job | None:
        """The oldest queued job, marked running."""
        return self._write(_jobs.claim)

    def finish_job(
        self, job_id: str, file: str, size_bytes: int, counts: dict[str, int], keep_ms: int
    ) -> Job:
        """Mark a job ready with its file, and record its ready event, in one transaction."""
        return self._write(lambda c: _jobs.finish(c, job_id, file, size_bytes, counts, keep_ms))

    def fail_job(self, job_id: str, error: str) -> Job:
        """Mark a job failed, saying why."""
        return self._write(lambda c: _jobs.fail(c, job_id, error))

    def jobs_due_expiry(self, now: int) -> list[Job]:
        """Ready jobs whose files are past their expiry."""
        return self._read(lambda c: _jobs.due_expiry(c, now))

    def mark_jobs_expired(self, job_ids: list[str]) -> None:
        """Record that these jobs' files are deleted."""
        self._write(lambda c: _jobs.mark_expired(c, job_ids))

    def job_files(self) -> set[str]:
        """The file names ready jobs hold."""
        return self._read(_jobs.files)

    # Annotations

    def create_annotation(self, owner: Owner, annotation: Annotation) -> Annotation:
        """Annotate one of the owner's devices (Refused for a bad window or unknown class)."""
        return self._write(lambda c: _annotations.create(c, owner, annotation))

    def annotation(self, owner: Owner, annotation_id: str) -> Annotation:
        """One live annotation of the owner's devices, or NotFound."""
        return self._read(lambda c: _annotations.get(c, owner, annotation_id))

    def annotation_page(
        self, owner: Owner, where: dict[str, Any], cursor: str | None = None, limit: int = 100
    ) -> Page:
        """A keyset page of annotations in (updated_at, id) order (filters: `_annotations.page`)."""
        return self._updated_page(
            lambda c, after, n: _annotations.page(c, owner, where, after, n), cursor, limit
        )

    def annotations_in(
        self, owner: Owner, device_id: str, window: tuple[int, int]
    ) -> list[Annotation]:
        """A device's live annotations overlapping the window, oldest first."""
        return self._read(lambda c: _annotations.in_window(c, owner, device_id, window))

    def update_annotation(
        self, owner: Owner, annotation_id: str, expected_version: int | None = None, **changes: Any
    ) -> Annotation:
        """Change an annotation; Conflict if `expected_version` is stale."""
        return self._write(
            lambda c: _annotations.update(c, owner, annotation_id, changes, expected_version)
        )

    def delete_annotation(self, owner: Owner, annotation_id: str) -> Annotation:
        """Soft-delete an annotation."""
        return self._write(lambda c: _annotations.delete(c, owner, annotation_id))

    def create_annotation_class(self, org_id: str, new: AnnotationClass) -> AnnotationClass:
        """A new class; Conflict if a live class has its name."""
        return self._write(lambda c: _annotations.create_class(c, org_id, new))

    def annotation_class(self, org_id: str, class_id: str) -> AnnotationClass:
        """One live class of the org, or NotFound."""
        return self._read(lambda c: _annotations.get_class(c, org_id, class_id))

    def annotation_class_page(
        self,
        org_id: str,
        updated_since: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """A keyset page of classes in (updated_at, id) order."""
        return self._updated_page(
            lambda c, after, n: _annotations.class_page(c, org_id, updated_since, after, n),
            cursor,
            limit,
        )

    def update_annotation_class(
        self, org_id: str, class_id: str, expected_version: int | None = None, **changes: Any
    ) -> AnnotationClass:
        """Change a class; Conflict if stale or if its new name is taken."""
        return self._write(
            lambda c: _annotations.update_class(c, org_id, class_id, changes, expected_version)
        )

    def delete_annotation_class(self, org_id: str, class_id: str) -> AnnotationClass:
        """Soft-delete a class."""
        return self._write(lambda c: _annotations.delete_class(c, org_id, class_id))
