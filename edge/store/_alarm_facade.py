"""The Store's part for alarms: rules, the alarms they raise, their trail, commit listeners."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from edge.models import Alarm, AlarmNote, AlertRule, Owner, Page, Reading, now_ms
from edge.store import _alarms
from edge.store._facade import Facade


class AlarmFacade(Facade):
    """Alert rules, alarms and their audit trail."""

    rules_version: int

    def on_commit(self, listener: Callable[[Sequence[Reading]], None]) -> None:
        """Call `listener` from the writer thread with the readings of each commit (it must
        return at once: hand the readings over, do not work in it)."""
        self._writer.listeners.append(listener)

    def create_rule(self, owner: Owner, rule: AlertRule) -> AlertRule:
        """Store an alert rule (validated by the caller) for a device the owner may see."""
        made = self._write(lambda c: _alarms.create_rule(c, owner, rule))
        self.rules_version += 1
        return made

    def rule(self, owner: Owner, rule_id: str) -> AlertRule:
        """One live alert rule, or NotFound."""
        return self._read(lambda c: _alarms.rule(c, owner, rule_id))

    def rule_page(
        self,
        owner: Owner,
        updated_since: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> Page:
        """Alert rules in (updated_at, id) order."""
        return self._updated_page(
            lambda c, after, n: _alarms.rule_page(c, owner, updated_since, after, n), cursor, limit
        )

    def update_rule(
        self,
        owner: Owner,
        rule_id: str,
        changes: dict[str, Any],
        expected_version: int | None,
        check: Callable[[AlertRule], None],
    ) -> AlertRule:
        """Change a rule; `check` validates the result (Refused), Conflict if stale."""
        updated = self._write(
            lambda c: _alarms.update_rule(c, owner, rule_id, changes, expected_version, check)
        )
        self.rules_version += 1
        return updated

    def delete_rule(self, owner: Owner, rule_id: str) -> AlertRule:
        """Soft-delete a rule and clear its active alarm."""
        deleted = self._write(lambda c: _alarms.delete_rule(c, owner, rule_id))
        self.rules_version += 1
        return deleted

    def live_rules(self) -> list[AlertRule]:
        """Every enabled rule of every organization."""
        return self._read(_alarms.live_rules)

    def active_rule_ids(self) -> set[str]:
        """Rules that have an active alarm."""
        return self._read(_alarms.active_rule_ids)

    def raise_alarm(
        self, rule: AlertRule, message: str, value: float | None, ts: int
    ) -> Alarm | None:
        """Open the rule's alarm (None if one is active already)."""
        return self._write(lambda c: _alarms.raise_alarm(c, rule, message, value, ts))

    def clear_rule_alarm(self, rule: AlertRule, message: str, ts: int) -> Alarm | None:
        """Close the rule's active alarm, its condition having cleared."""
        return self._write(lambda c: _alarms.clear_rule(c, rule, message, ts))

    def alarm(self, owner: Owner, alarm_id: str) -> Alarm:
        """One alarm (by its id or its event's) with its audit trail."""
        return self._read(lambda c: _alarms.alarm(c, owner, alarm_id))

    def alarm_page(
        self,
        owner: Owner,
        state: str | None = None,
        device_id: str | None = None,
        window: tuple[int | None, int | None] = (None, None),
        cursor: str | None = None,
        limit: int = 100,
        rule_id: str | None = None,
    ) -> Page:
        """Alarms newest first, by state (active, acknowledged, cleared), device, window, rule."""
        return self._page(
            lambda c, after, n: _alarms.alarm_page(
                c, owner, state, device_id, rule_id, window, after, n
            ),
            cursor,
            (int, str),
            lambda a: (a.raised_at, a.id),
            limit,
        )

    def acknowledge_alarm(
        self, owner: Owner, alarm_id: str, actor: str, text: str | None = None
    ) -> Alarm:
        """Acknowledge an alarm; Refused if it was already."""
        return self._write(lambda c: _alarms.acknowledge(c, owner, alarm_id, actor, text))

    def clear_alarm(
        self, owner: Owner, alarm_id: str, actor: str, text: str | None = None
    ) -> Alarm:
        """Clear an alarm by hand; Refused if it is cleared already."""
        return self._write(lambda c: _alarms.clear(c, owner, alarm_id, actor, text, now_ms()))

    def comment_alarm(self, owner: Owner, alarm_id: str, actor: str, text: str) -> Alarm:
        """Add an operator's note to an alarm's trail."""
        return self._write(lambda c: _alarms.comment(c, owner, alarm_id, actor, text))

    def unsynced_alarm_actions(self, limit: int = 100) -> list[tuple[AlarmNote, Alarm]]:
        """People's alarm actions (ack, clear, comment) not yet carried upstream."""
        return self._read(lambda c: _alarms.unsynced_actions(c, limit))

    def mark_alarm_action_synced(self, note_id: str) -> None:
        self._write(lambda c: _alarms.mark_action_synced(c, note_id))

    def upsert_rule(self, org_id: str, row: dict[str, Any]) -> bool:
        """Create or update a rule pulled from the upstream; False if its device is not here."""
        applied = self._write(lambda c: _alarms.upsert_rule(c, org_id, row))
        self.rules_version += 1
        return applied
