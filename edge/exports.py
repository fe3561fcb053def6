"""Exports (seed 001): a zip of CSVs of a device's or a site's data over a window.

`readings.csv` (`device_id,metric,ts,value,quality,correction`, by device,
metric and time; the current version of each reading) and `annotations.csv`
(`id,device_id,class_id,from,to,text,author,created_at,updated_at`, the
live annotations overlapping the window), each present when the export
includes it. Entries are deflated and written as they are read, a store page
at a time, so a year of readings never sits in memory.
"""

from __future__ import annotations

import csv
import io
import threading
import zipfile
from typing import BinaryIO, Final

from edge.job_files import iso
from edge.reports import Writer, check, readings, scope_devices
from edge.store import Job, Store

INCLUDES: Final = ("READINGS", "ANNOTATIONS")
READING_COLUMNS: Final = ("device_id", "metric", "ts", "value", "quality", "correction")
ANNOTATION_COLUMNS: Final = ("id", "device_id", "class_id", "from", "to", "text", "author",
                             "created_at", "updated_at")  # fmt: skip


def write_export(store: Store, job: Job, out: BinaryIO, stop: threading.Event) -> dict[str, int]:
    """Write the job's zip to `out`; returns its reading and annotation counts."""
    includes = job.params.get("includes", list(INCLUDES))
    devices = scope_devices(store, job)
    window = (job.start_ms, job.end_ms)
    counts = {"reading_count": 0, "annotation_count": 0}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        if "READINGS" in includes:
            with _Entry(archive, "readings.csv", READING_COLUMNS) as writer:
                for device in devices:
                    for point in store.points(job.boundary, device.id):
                        for r in readings(store, job.boundary, point.id, window, stop):
                            value = "" if r.value is None else repr(r.value)
                            writer.writerow((device.id, point.key, iso(r.ts_ms), value,
                                             r.quality.name.lower(),
                                             "true" if r.correction else "false"))  # fmt: skip
                            counts["reading_count"] += 1
        if "ANNOTATIONS" in includes:
            with _Entry(archive, "annotations.csv", ANNOTATION_COLUMNS) as writer:
                for device in devices:
                    check(stop)
                    for a in store.annotations_in(job.boundary, device.id, window):
                        writer.writerow((a.id, a.device_id, a.class_id or "", iso(a.start_ms),
                                         iso(a.end_ms), a.text, a.author, iso(a.created_at),
                                         iso(a.updated_at)))  # fmt: skip
                        counts["annotation_count"] += 1
    return counts


class _Entry:
    """A CSV entry of the archive, written as rows arrive."""

    def __init__(self, archive: zipfile.ZipFile, name: str, columns: tuple[str, ...]) -> None:
        self._entry = archive.open(name, "w", force_zip64=True)
        self._text = io.TextIOWrapper(self._entry, encoding="utf-8", newline="")
        self._columns = columns

    def __enter__(self) -> Writer:
        writer = csv.writer(self._text, lineterminator="\n")
        writer.writerow(self._columns)
        return writer

    def __exit__(self, *exc: object) -> None:
        self._text.close()
