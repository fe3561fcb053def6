"""SQL over idempotency records: the first answer to a request sent with an Idempotency-Key."""

from __future__ import annotations

import apsw

from edge.models import now_ms


def answer(conn: apsw.Connection, key_id: str, idem_key: str) -> tuple[str, int, bytes] | None:
    """(request hash, status, body) of the first request with this key, if it committed."""
    row = conn.execute(
        "SELECT request_hash, status, body FROM idempotency WHERE key_id = ? AND idem_key = ?",
        (key_id, idem_key),
    ).fetchone()
    return None if row is None else (row[0], row[1], bytes(row[2]))


def record(
    conn: apsw.Connection, key_id: str, idem_key: str, request_hash: str, status: int, body: bytes
) -> None:
    """Keep the answer; a second record for the same key keeps the first."""
    conn.execute(
        "INSERT OR IGNORE INTO idempotency (key_id, idem_key, request_hash, status, body, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (key_id, idem_key, request_hash, status, body, now_ms()),
    )


def forget_before(conn: apsw.Connection, cutoff_ms: int) -> int:
    """Drop answers older than the cutoff; returns how many."""
    conn.execute("DELETE FROM idempotency WHERE created_at < ?", (cutoff_ms,))
    return conn.changes()
