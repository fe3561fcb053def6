"""SQL over annotations (a note over a time range of a device's data) and their classes.

An annotation is visible to whoever may see its device; its class, if any,
must be a live class of the organization. Classes are the organization's,
unique by name among the live ones. Both are versioned (ETags) and deleted
softly, so `updated_since` listings show deletions.
"""

from __future__ import annotations

from typing import Any, Final

import apsw
import msgspec

from edge import ids
from edge.models import Owner, now_ms, org_of
from edge.store._catalog import (
    Conflict,
    NotFound,
    Refused,
    check_change,
    device,
    device_visible,
    reach,
)

MUTABLE: Final = frozenset({"start_ms", "end_ms", "class_id", "text"})
CLASS_MUTABLE: Final = frozenset({"name", "colour", "description"})
_COLUMNS: Final = (
    "id, org_id, device_id, start_ms, end_ms, class_id, text, author, created_at, updated_at, "
    "deleted_at, version"
)
_CLASS_COLUMNS: Final = (
    "id, org_id, name, colour, description, created_at, updated_at, deleted_at, version"
)


class Annotation(msgspec.Struct, frozen=True):
    """A note over [start_ms, end_ms) of a device's data, by the key that wrote it."""

    id: str
    org_id: str
    device_id: str
    start_ms: int
    end_ms: int
    class_id: str | None
    text: str
    author: str
    created_at: int = 0
    updated_at: int = 0
    deleted_at: int | None = None
    version: int = 1


class AnnotationClass(msgspec.Struct, frozen=True):
    """A kind of annotation (maintenance, fault, test run) with the colour charts draw it in."""

    id: str
    org_id: str
    name: str
    colour: str | None = None
    description: str | None = None
    created_at: int = 0
    updated_at: int = 0
    deleted_at: int | None = None
    version: int = 1


def _check(conn: apsw.Connection, owner: Owner, note: Annotation, class_named: bool) -> None:
    """A window that ends after it starts, and a class (when the caller names one) that is live:
    an annotation keeps a class deleted since, until it is given another."""
    if note.end_ms <= note.start_ms:
        raise Refused("an annotation's to must be after its from")
    if class_named and note.class_id is not None:
        get_class(conn, org_of(owner), note.class_id, missing=Refused)


def create(conn: apsw.Connection, owner: Owner, new: Annotation) -> Annotation:
    """Annotate a device the owner may see."""
    device(conn, owner, new.device_id)
    _check(conn, owner, new, class_named=True)
    ts = now_ms()
    made = msgspec.structs.replace(
        new, id=ids.new_id("ann"), org_id=org_of(owner), created_at=ts, updated_at=ts, version=1
    )
    conn.execute(
        f"INSERT INTO annotations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 1)",
        (made.id, made.org_id, made.device_id, made.start_ms, made.end_ms, made.class_id,
         made.text, made.author, ts, ts),
    )  # fmt: skip
    return made


def get(conn: apsw.Connection, owner: Owner, annotation_id: str) -> Annotation:
    """A live annotation of a device the owner may see, or NotFound."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM annotations WHERE org_id = ?1 AND id = ?4 "
        f"AND deleted_at IS NULL AND {device_visible('annotations.device_id')}",
        (*reach(owner), annotation_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"no annotation {annotation_id}")
    return Annotation(*row)


def page(
    conn: apsw.Connection,
    owner: Owner,
    where: dict[str, Any],
    after: tuple[int, str] | None,
    limit: int,
) -> list[Annotation]:
    """Annotations in (updated_at, id) order; `where` may hold device_id, class_id, from and
    to (those overlapping [from, to)) and updated_since (then deleted ones too)."""
    after_ts, after_id = after if after is not None else (-1, "")
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM annotations WHERE org_id = ?1 "
        f"AND {device_visible('annotations.device_id')} AND (?4 IS NULL OR device_id = ?4) "
        "AND (?5 IS NULL OR class_id = ?5) AND (?6 IS NULL OR end_ms > ?6) "
        "AND (?7 IS NULL OR start_ms < ?7) "
        "AND ((?8 IS NULL AND deleted_at IS NULL) OR updated_at > ?8) "
        "AND (updated_at, id) > (?9, ?10) ORDER BY updated_at, id LIMIT ?11",
        (*reach(owner), where.get("device_id"), where.get("class_id"), where.get("from"),
         where.get("to"), where.get("updated_since"), after_ts, after_id, limit),
    )  # fmt: skip
    return [Annotation(*row) for row in rows]


def in_window(
    conn: apsw.Connection, owner: Owner, device_id: str, window: tuple[int, int]
) -> list[Annotation]:
    """A device's live annotations overlapping [start, end), oldest first (for exports)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM annotations WHERE org_id = ?1 "
        f"AND {device_visible('annotations.device_id')} AND device_id = ?4 "
        "AND deleted_at IS NULL AND end_ms > ?5 AND start_ms < ?6 ORDER BY start_ms, id",
        (*reach(owner), device_id, *window),
    )
    return [Annotation(*row) for row in rows]


def update(
    conn: apsw.Connection,
    owner: Owner,
    annotation_id: str,
    changes: dict[str, Any],
    expected_version: int | None,
) -> Annotation:
    """Change an annotation's window, class or text (Conflict if `expected_version` is stale)."""
    current = get(conn, owner, annotation_id)
    check_change("annotation", current, changes, MUTABLE, expected_version)
    updated = msgspec.structs.replace(current, **changes,
                                      updated_at=max(now_ms(), current.updated_at + 1),
                                      version=current.version + 1)  # fmt: skip
    _check(conn, owner, updated, class_named="class_id" in changes)
    conn.execute(
        "UPDATE annotations SET start_ms = ?, end_ms = ?, class_id = ?, text = ?, "
        "updated_at = ?, version = ? WHERE id = ?",
        (updated.start_ms, updated.end_ms, updated.class_id, updated.text, updated.updated_at,
         updated.version, annotation_id),
    )  # fmt: skip
    return updated


def delete(conn: apsw.Connection, owner: Owner, annotation_id: str) -> Annotation:
    """Soft-delete an annotation."""
    current = get(conn, owner, annotation_id)
    ts = max(now_ms(), current.updated_at + 1)
    conn.execute(
        "UPDATE annotations SET deleted_at = ?, updated_at = ?, version = version + 1 WHERE id = ?",
        (ts, ts, annotation_id),
    )
    return msgspec.structs.replace(current, deleted_at=ts, updated_at=ts,
                                   version=current.version + 1)  # fmt: skip


def _name_free(conn: apsw.Connection, org_id: str, name: str, class_id: str) -> None:
    taken = conn.execute(
        "SELECT id FROM annotation_classes WHERE org_id = ? AND name = ? AND deleted_at IS NULL "
        "AND id != ?",
        (org_id, name, class_id),
    ).fetchone()
    if taken:
        raise Conflict(f"an annotation class named {name!r} exists: {taken[0]}")


def create_class(conn: apsw.Connection, org_id: str, new: AnnotationClass) -> AnnotationClass:
    """A new annotation class; Conflict if a live one has its name."""
    _name_free(conn, org_id, new.name, "")
    ts = now_ms()
    made = msgspec.structs.replace(new, id=ids.new_id("acl"), org_id=org_id, created_at=ts,
                                   updated_at=ts, version=1)  # fmt: skip
    conn.execute(
        f"INSERT INTO annotation_classes ({_CLASS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 1)",
        (made.id, org_id, made.name, made.colour, made.description, ts, ts),
    )
    return made


def get_class(
    conn: apsw.Connection, org_id: str, class_id: str, missing: type[Exception] = NotFound
) -> AnnotationClass:
    """A live class of the org; else `missing` (NotFound, or Refused when a body names it)."""
    row = conn.execute(
        f"SELECT {_CLASS_COLUMNS} FROM annotation_classes WHERE org_id = ? AND id = ? "
        "AND deleted_at IS NULL",
        (org_id, class_id),
    ).fetchone()
    if row is None:
        raise missing(f"no annotation class {class_id}")
    return AnnotationClass(*row)


def class_page(
    conn: apsw.Connection,
    org_id: str,
    updated_since: int | None,
    after: tuple[int, str] | None,
    limit: int,
) -> list[AnnotationClass]:
    """Classes in (updated_at, id) order; with updated_since, deleted ones too."""
    after_ts, after_id = after if after is not None else (-1, "")
    rows = conn.execute(
        f"SELECT {_CLASS_COLUMNS} FROM annotation_classes WHERE org_id = ?1 "
        "AND ((?2 IS NULL AND deleted_at IS NULL) OR updated_at > ?2) "
        "AND (updated_at, id) > (?3, ?4) ORDER BY updated_at, id LIMIT ?5",
        (org_id, updated_since, after_ts, after_id, limit),
    )
    return [AnnotationClass(*row) for row in rows]


def update_class(
    conn: apsw.Connection,
    org_id: str,
    class_id: str,
    changes: dict[str, Any],
    expected_version: int | None,
) -> AnnotationClass:
    """Change a class's name, colour or description (Conflict if stale or the name is taken)."""
    current = get_class(conn, org_id, class_id)
    check_change("annotation class", current, changes, CLASS_MUTABLE, expected_version)
    updated = msgspec.structs.replace(current, **changes,
                                      updated_at=max(now_ms(), current.updated_at + 1),
                                      version=current.version + 1)  # fmt: skip
    _name_free(conn, org_id, updated.name, class_id)
    conn.execute(
        "UPDATE annotation_classes SET name = ?, colour = ?, description = ?, updated_at = ?, "
        "version = ? WHERE id = ?",
        (updated.name, updated.colour, updated.description, updated.updated_at, updated.version,
         class_id),
    )  # fmt: skip
    return updated


def delete_class(conn: apsw.Connection, org_id: str, class_id: str) -> AnnotationClass:
    """Soft-delete a class; annotations keep naming it."""
    current = get_class(conn, org_id, class_id)
    ts = max(now_ms(), current.updated_at + 1)
    conn.execute(
        "UPDATE annotation_classes SET deleted_at = ?, updated_at = ?, version = version + 1 "
        "WHERE id = ?",
        (ts, ts, class_id),
    )
    return msgspec.structs.replace(current, deleted_at=ts, updated_at=ts,
                                   version=current.version + 1)  # fmt: skip
