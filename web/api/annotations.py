"""`/annotations` and `/annotation-classes` (seed 001 analytics): notes over a time range of a
device's data, and the kinds they come in.

An annotation has `device_id`, `from`, `to` (from inclusive, to exclusive),
an optional `class_id`, `text`, and its `author` (the id of the key that
wrote it). Both resources carry ETags (a stale `If-Match` gets 409), delete
softly and list in `(updated_at, id)` order with `updated_since`. Reading
needs `telemetry.read`, writing `telemetry.write`; a device's own credential
(which may only send that device's telemetry) cannot write them, nor can a key
limited to groups or customers change the organization's classes.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from edge.runtime import Runtime
from edge.store import Annotation, AnnotationClass, Refused
from web.api import params, resources, series
from web.api.dialect import Dialect
from web.api.errors import ApiError
from web.api.reports import parse
from web.api.series import DeviceId, From, FromUtc, To, ToUtc

READ, WRITE = "telemetry.read", "telemetry.write"
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=5000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Colour = Annotated[str, msgspec.Meta(pattern=r"^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")]
Description = Annotated[str, msgspec.Meta(max_length=1000)]
UNSET = msgspec.UNSET


class _NewAnnotation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    device_id: str
    text: Text
    start: datetime | None = msgspec.field(default=None, name="from")
    end: datetime | None = msgspec.field(default=None, name="to")
    from_utc: datetime | None = None
    to_utc: datetime | None = None
    class_id: str | None = None


class _AnnotationChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    start: datetime | msgspec.UnsetType = msgspec.field(default=UNSET, name="from")
    end: datetime | msgspec.UnsetType = msgspec.field(default=UNSET, name="to")
    class_id: str | msgspec.UnsetType | None = UNSET
    text: Text | msgspec.UnsetType = UNSET


class _NewClass(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name
    colour: Colour | None = None
    description: Description | None = None


class _ClassChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Name | msgspec.UnsetType = UNSET
    colour: Colour | msgspec.UnsetType | None = UNSET
    description: Description | msgspec.UnsetType | None = UNSET


def _annotation(a: Annotation) -> dict[str, Any]:
    return {
        "id": a.id,
        "device_id": a.device_id,
        "from": resources.iso(a.start_ms),
        "to": resources.iso(a.end_ms),
        "class_id": a.class_id,
        "text": a.text,
        "author": a.author,
        "etag": resources.etag(a),
        "created_at": resources.iso(a.created_at),
        "updated_at": resources.iso(a.updated_at),
        "deleted_at": resources.iso(a.deleted_at),
    }


def _class(c: AnnotationClass) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "colour": c.colour,
        "description": c.description,
        "etag": resources.etag(c),
        "created_at": resources.iso(c.created_at),
        "updated_at": resources.iso(c.updated_at),
        "deleted_at": resources.iso(c.deleted_at),
    }


def _answer(request: Request, dialect: Dialect, record: Any, status: int = 200) -> Response:
    out = _annotation(record) if isinstance(record, Annotation) else _class(record)
    headers = {"ETag": resources.etag(record)}
    return Response(dialect.one(request, out), status_code=status, headers=headers)


def _writer(request: Request, org_wide: bool = False) -> Any:
    """The caller's boundary, if it may write here: not a device's credential, and for the
    organization's classes not a key limited to groups or customers."""
    caller = params.caller(request)
    if caller.key.device_id is not None:
        raise ApiError(403, "A device's credential may only send its telemetry.")
    if org_wide and caller.boundary.narrowed:
        raise ApiError(403, "A key limited to device groups or customers cannot change "
                       "annotation classes.")  # fmt: skip
    return caller.boundary


def _ms(value: datetime, name: str) -> int:
    ms = resources.epoch_ms(value, name)
    assert ms is not None
    return ms


def _where(
    device_id: str | None,
    class_id: str | None,
    start: datetime | None,
    end: datetime | None,
    updated_since: datetime | None,
) -> dict[str, Any]:
    """A listing's filters in epoch ms; 400 for a window that ends before it starts."""
    span = (resources.epoch_ms(start, "from"), resources.epoch_ms(end, "to"))
    if span[0] is not None and span[1] is not None and span[1] <= span[0]:
        raise ApiError(400, "to must be after from.", {"params": ["from", "to"]})
    return {"device_id": device_id, "class_id": class_id, "from": span[0], "to": span[1],
            "updated_since": resources.epoch_ms(updated_since, "updated_since")}  # fmt: skip


class AnnotationsController(Controller):
    """Annotations of the devices the caller may see."""

    path = "/annotations"
    tags = ["annotations"]

    @get("/", opt={"scope": READ})
    async def list_annotations(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        device_id: FromQuery[str | None] = None,
        device_id_camel: DeviceId = None,
        class_id: FromQuery[str | None] = None,
        class_id_camel: Annotated[str | None, QueryParameter(name="classId")] = None,
        start: From = None,
        start_utc: FromUtc = None,
        end: To = None,
        end_utc: ToUtc = None,
        updated_since: FromQuery[datetime | None] = None,
        updated_since_camel: Annotated[datetime | None, QueryParameter(name="updatedSince")] = None,
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """In (updated_at, id) order; by device, class, and window (those overlapping it)."""
        size = params.page_size(dialect, limit, page_size)
        where = _where(device_id or device_id_camel, class_id or class_id_camel,
                       start or start_utc, end or end_utc,
                       updated_since or updated_since_camel)  # fmt: skip
        owner = params.caller(request).boundary
        page = await asyncio.to_thread(runtime.store.annotation_page, owner, where, cursor, size)
        return dialect.page(request, [_annotation(a) for a in page.items], page.next_cursor, size)

    @get("/{annotation_id:str}", opt={"scope": READ})
    async def get_annotation(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        annotation_id: FromPath[str],
    ) -> Response[dict[str, Any]]:
        """One annotation, with its ETag."""
        found = await asyncio.to_thread(
            runtime.store.annotation, params.caller(request).boundary, annotation_id
        )
        return _answer(request, dialect, found)

    @post("/", opt={"scope": WRITE})
    async def create_annotation(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> Response[dict[str, Any]]:
        """Annotate a device: device_id, from, to, text, and optionally class_id."""
        boundary = _writer(request)
        new = parse(params.json_body(dialect, await request.body()), _NewAnnotation)
        span = series.window(new.start or new.from_utc, new.end or new.to_utc, 2**62, "")
        note = Annotation("", boundary.org_id, new.device_id, *span, new.class_id, new.text,
                          params.caller(request).key.id)  # fmt: skip
        made = await asyncio.to_thread(runtime.store.create_annotation, boundary, note)
        return _answer(request, dialect, made, 201)

    @patch("/{annotation_id:str}", opt={"scope": WRITE})
    async def update_annotation(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        annotation_id: FromPath[str],
    ) -> Response[dict[str, Any]]:
        """Change from, to, class_id or text; a stale If-Match gets 409."""
        boundary, expected = _writer(request), params.if_match(request)
        change = parse(params.json_body(dialect, await request.body()), _AnnotationChange)
        fields = {k: v for k, v in msgspec.structs.asdict(change).items() if v is not UNSET}
        if "start" in fields:
            fields["start_ms"] = _ms(fields.pop("start"), "from")
        if "end" in fields:
            fields["end_ms"] = _ms(fields.pop("end"), "to")
        updated = await asyncio.to_thread(
            lambda: runtime.store.update_annotation(boundary, annotation_id, expected, **fields)
        )
        return _answer(request, dialect, updated)

    @delete("/{annotation_id:str}", opt={"scope": WRITE}, status_code=204)
    async def delete_annotation(
        self, request: Request, runtime: NamedDependency[Runtime], annotation_id: FromPath[str]
    ) -> None:
        """Remove an annotation (soft: `updated_since` listings show it deleted)."""
        await asyncio.to_thread(runtime.store.delete_annotation, _writer(request), annotation_id)


class AnnotationClassesController(Controller):
    """The organization's annotation classes."""

    path = "/annotation-classes"
    tags = ["annotations"]

    @get("/", opt={"scope": READ})
    async def list_annotation_classes(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        updated_since: FromQuery[datetime | None] = None,
        updated_since_camel: Annotated[datetime | None, QueryParameter(name="updatedSince")] = None,
        limit: params.PageSize = None,
        page_size: params.CamelSize = None,
        cursor: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        """In (updated_at, id) order; with updated_since, deleted ones too."""
        size = params.page_size(dialect, limit, page_size)
        since = resources.epoch_ms(updated_since or updated_since_camel, "updated_since")
        org = params.caller(request).org_id
        page = await asyncio.to_thread(
            runtime.store.annotation_class_page, org, since, cursor, size
        )
        return dialect.page(request, [_class(c) for c in page.items], page.next_cursor, size)

    @get("/{class_id:str}", opt={"scope": READ})
    async def get_annotation_class(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        class_id: FromPath[str],
    ) -> Response[dict[str, Any]]:
        """One class, with its ETag."""
        found = await asyncio.to_thread(
            runtime.store.annotation_class, params.caller(request).org_id, class_id
        )
        return _answer(request, dialect, found)

    @post("/", opt={"scope": WRITE})
    async def create_annotation_class(
        self, request: Request, runtime: NamedDependency[Runtime], dialect: NamedDependency[Dialect]
    ) -> Response[dict[str, Any]]:
        """A new class: name (unique among live classes, else 409), colour, description."""
        org = _writer(request, org_wide=True).org_id
        new = parse(params.json_body(dialect, await request.body()), _NewClass)
        if not new.name.strip():
            raise Refused("name must not be empty")
        made = await asyncio.to_thread(runtime.store.create_annotation_class, org,
                                       AnnotationClass("", org, new.name.strip(), new.colour,
                                                       new.description))  # fmt: skip
        return _answer(request, dialect, made, 201)

    @patch("/{class_id:str}", opt={"scope": WRITE})
    async def update_annotation_class(
        self,
        request: Request,
        runtime: NamedDependency[Runtime],
        dialect: NamedDependency[Dialect],
        class_id: FromPath[str],
    ) -> Response[dict[str, Any]]:
        """Change name, colour or description; a stale If-Match gets 409."""
        org, expected = _writer(request, org_wide=True).org_id, params.if_match(request)
        change = parse(params.json_body(dialect, await request.body()), _ClassChange)
        fields = {k: v for k, v in msgspec.structs.asdict(change).items() if v is not UNSET}
        updated = await asyncio.to_thread(
            lambda: runtime.store.update_annotation_class(org, class_id, expected, **fields)
        )
        return _answer(request, dialect, updated)

    @delete("/{class_id:str}", opt={"scope": WRITE}, status_code=204)
    async def delete_annotation_class(
        self, request: Request, runtime: NamedDependency[Runtime], class_id: FromPath[str]
    ) -> None:
        """Remove a class (soft); annotations keep its id."""
        org = _writer(request, org_wide=True).org_id
        await asyncio.to_thread(runtime.store.delete_annotation_class, org, class_id)
