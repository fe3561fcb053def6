"""Jobs in the store and the runner's housekeeping, on a real SQLite file: order, restart
recovery, the ready event in the same transaction, boundaries, other tenants, and expiry."""

from __future__ import annotations

import pytest

from edge.jobs import JobRunner
from edge.models import Boundary, Device, now_ms
from edge.store import NotFound, Refused
from edge.store._jobs import MAX_INTERRUPTIONS
from tests.store.helpers import other_org

WINDOW = (1_767_225_600_000, 1_767_312_000_000)  # 2026-01-01 .. 2026-01-02


def queue(store, owner, kind="report", scope=(None, None)):
    return store.create_job(owner, "key_test", kind, "alarm_log", scope, WINDOW, {})


def test_jobs_are_claimed_oldest_first_and_a_stop_puts_running_ones_back(store):
    owner = Boundary(store.organization.id)
    first, second = queue(store, owner), queue(store, owner, "export")
    assert second.params["expected_at"] > first.params["expected_at"]
    assert store.claim_job().id == first.id
    assert store.claim_job().id == second.id
    assert store.claim_job() is None
    queued, failed = store.requeue_running_jobs()
    assert sorted(j.id for j in queued) == sorted([first.id, second.id]) and failed == []
    again = store.job(owner, "report", first.id)
    assert (again.status, again.started_at, again.interrupted) == ("queued", None, 1)
    assert store.claim_job().id == first.id


def test_a_job_the_gateway_keeps_ending_during_is_failed_not_run_at_every_start(store):
    owner = Boundary(store.organization.id)
    job = queue(store, owner, "export")
    for ended in range(1, MAX_INTERRUPTIONS):
        assert store.claim_job().id == job.id
        queued, failed = store.requeue_running_jobs()
        assert [j.interrupted for j in queued] == [ended] and failed == []
    store.claim_job()
    queued, [gave_up] = store.requeue_running_jobs()
    assert queued == [] and gave_up.id == job.id
    stored = store.job(owner, "export", job.id)
    assert (stored.status, stored.interrupted) == ("failed", MAX_INTERRUPTIONS)
    assert f"the gateway ended {MAX_INTERRUPTIONS} times while this export ran" in stored.error
    assert store.claim_job() is None


def test_a_run_the_runner_is_told_to_stop_goes_back_to_the_queue_uncounted(store, settings):
    owner = Boundary(store.organization.id)
    job = queue(store, owner)
    runner = JobRunner(store, settings)
    runner.stop()  # before its first page: the alarm log's first look at the store
    runner._run(store.claim_job())
    back = store.job(owner, "report", job.id)
    assert (back.status, back.started_at, back.interrupted) == ("queued", None, 0)
    assert store.requeue_running_jobs() == ([], [])
    assert runner.files.leftovers(store.job_files()) == []


def test_finishing_a_job_records_its_ready_event_with_it(store):
    org = store.organization.id
    job = queue(store, Boundary(org), "export")
    store.claim_job()
    done = store.finish_job(job.id, f"exports/{job.id}.zip", 10, {"reading_count": 3}, 60_000)
    assert done.status == "ready" and done.expires_at == done.completed_at + 60_000
    [event] = [e for e in store.events(org) if e.type == "export.ready"]
    assert event.data["export_id"] == job.id and event.data["reading_count"] == 3
    with pytest.raises(NotFound):
        store.fail_job(job.id, "too late: it is not running")


def test_a_job_is_seen_within_its_boundary_and_never_by_another_tenant(store):
    org = store.organization.id
    group = store.create_device_group(org, "North")
    inside = store.create_device(Device("", org, "in", "http", group_id=group.id))
    outside = store.create_device(Device("", org, "out", "http"))
    bounded = Boundary(org, (group.id,))
    with pytest.raises(Refused):
        queue(store, bounded, scope=("DEVICE", outside.id))
    mine = queue(store, bounded, scope=("DEVICE", inside.id))
    everyone = queue(store, Boundary(org))
    assert [j.id for j in store.job_page(bounded, "report").items] == [mine.id]
    assert {j.id for j in store.job_page(Boundary(org), "report").items} == {everyone.id, mine.id}
    with pytest.raises(NotFound):
        store.job(bounded, "report", everyone.id)
    stranger = Boundary(other_org(store))
    with pytest.raises(NotFound):
        store.job(stranger, "report", mine.id)
    with pytest.raises(NotFound):
        store.job_by_id(stranger.org_id, "report", mine.id)
    with pytest.raises(Refused):
        queue(store, stranger, scope=("DEVICE", inside.id))


def test_the_runner_deletes_expired_files_and_leftovers_no_ready_job_holds(store, settings):
    runner = JobRunner(store, settings)
    job = queue(store, Boundary(store.organization.id))
    store.claim_job()
    name = runner.files.name_for("report", job.id)
    with runner.files.writing(name) as out:
        out.write(b"a,b\n")
    store.finish_job(job.id, name, 4, {"row_count": 0}, 1_000)
    stray = runner.files.path("reports/rpt_gone.csv.part")
    stray.write_bytes(b"half")
    assert runner.files.leftovers(store.job_files()) == ["reports/rpt_gone.csv.part"]
    assert runner.expire(now_ms()) == []
    assert runner.expire(now_ms() + 1_000) == [job.id]
    assert not runner.files.path(name).exists()
    assert store.job(Boundary(store.organization.id), "report", job.id).status == "expired"
    with pytest.raises(ValueError):
        runner.files.path("../edge.db")
