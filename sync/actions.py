"""ActionPusher: carries people's alarm actions made on the gateway (acknowledge, clear,
comment) to the upstream's alarm for the same rule.

The gateway and the upstream each raise their own alarm from the same rule (pulled from
the upstream, so it has the same id on both sides) and the same readings. An action is
carried to the upstream's alarm of that rule raised within a minute of the local one
(both are dated by the reading that raised them); until the upstream has raised it (its
readings may still be on their way) the action waits. An upstream that already took the
action (acknowledged or cleared: 422) counts as done; a 409 re-reads and tries again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from edge.models import Alarm, AlarmNote
from edge.store import Store
from sync.upstream import Unreachable, Upstream, epoch_ms, message

log = logging.getLogger(__name__)

# Both sides date an alarm by the reading that raised it: within this, it is the same one.
SAME_ALARM_MS: Final = 60_000
ATTEMPTS_ON_CONFLICT: Final = 3
PATHS: Final = {"ack": "ack", "clear": "clear", "comment": "comment"}


class ActionPusher:
    """One pass at a time over the actions not yet carried upstream."""

    def __init__(self, store: Store, upstream: Upstream) -> None:
        self._store = store
        self._upstream = upstream
        self.carried = 0

    async def round(self) -> None:
        """Carry what can be carried now; Unreachable if the upstream cannot answer."""
        for note, alarm in await asyncio.to_thread(self._store.unsynced_alarm_actions):
            if await self._carry(note, alarm):
                await asyncio.to_thread(self._store.mark_alarm_action_synced, note.id)
                self.carried += 1

    async def _carry(self, note: AlarmNote, alarm: Alarm) -> bool:
        for _ in range(ATTEMPTS_ON_CONFLICT):
            target = await self._upstream_alarm(alarm)
            if target is None:
                return False  # not raised upstream yet: try again next pass
            body = {"text": note.text} if note.text else {}
            if note.action == "comment":
                body = {"text": note.text or ""}
            response = await self._upstream.request(
                "POST", f"/events/{target}/{PATHS[note.action]}", body=body
            )
            if response.is_success or response.status_code == 422:
                return True  # done, or the upstream's alarm is in that state already
            if response.status_code != 409:
                raise Unreachable(f"alarm action {note.id}: {response.status_code} "
                                  f"{message(response)}")  # fmt: skip
        return False

    async def _upstream_alarm(self, alarm: Alarm) -> str | None:
        response = await self._upstream.request(
            "GET", "/alerts", params={"rule_id": alarm.rule_id, "limit": 20}
        )
        if not response.is_success:
            raise Unreachable(f"GET /alerts: {response.status_code} {message(response)}")
        for row in response.json()["data"]:
            if abs(epoch_ms(row["raised_at"]) - alarm.raised_at) <= SAME_ALARM_MS:
                return row["id"]
        return None
