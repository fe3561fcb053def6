"""The BLE driver: one scanner per adapter, adverts parsed per family into readings, availability
learned per sensor, GATT polls for sensors that need them, and discovery of nearby sensors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any, Final

from drivers.ble.adverts import Advert
from drivers.ble.availability import Availability
from drivers.ble.devices import DEVICE_TYPE, add_device, setup
from drivers.ble.families import FAMILIES, Decoder, detect
from drivers.ble.gatt import GattPoller, GattTarget
from drivers.ble.scanner import AdapterScanner, Matcher
from drivers.ble.sensors import NEARBY_MAX, REDETECT_S, Nearby, Sensor
from drivers.ble.transports import Radio, open_radio
from edge.models import Device, Owner, Quality, Reading, now_ms
from edge.runtime import CommandRefused
from edge.settings import BleSettings
from edge.stats import Sample
from edge.store import Store
from edge.tasks import cancel_and_wait

log = logging.getLogger(__name__)

# How often the store is checked for added, changed or removed BLE devices.
RELOAD_CHECK_S: Final = 5.0
# How often sensors are checked for staleness (well under any stale timeout).
STALE_CHECK_S: Final = 1.0
# An on-demand active scan lasts this long unless the caller says otherwise.
ACTIVE_SCAN_S: Final = 10.0
ACTIVE_SCAN_MAX_S: Final = 120.0
# Powering a radio off may wait on a transport that is gone; it gets this long.
RADIO_CLOSE_S: Final = 2.0


class BleDriver:
    """Runs the adapter's scanner and GATT poller; adverts of adopted sensors become readings."""

    types = frozenset({DEVICE_TYPE})

    def __init__(
        self, store: Store, org_id: str, settings: BleSettings, radio: Radio | None = None
    ) -> None:
        self._store = store
        self._org_id = org_id
        self.settings = settings
        patterns = [p for f in FAMILIES.values() for p in f.or_patterns]
        self.radio = radio or open_radio(settings, patterns)
        self.scanner = AdapterScanner(
            self.radio.adapter, self.radio.scanner, passive=settings.passive,
            watchdog_s=settings.watchdog_s, reset=self.radio.close if self.radio.bumble else None,
        )  # fmt: skip
        lock = self.radio.bumble.gatt_lock if self.radio.bumble else asyncio.Lock()
        self.gatt = GattPoller(lock, self.radio.client_kwargs, self._emit, self.scanner.devices.get)
        self.nearby: dict[str, Nearby] = {}
        self.sensors: dict[str, Sensor] = {}  # by address
        self._unregister: list[Any] = []
        self._events: asyncio.Queue[tuple[str, str, str, str, dict[str, Any]]] = asyncio.Queue()
        self._reload = asyncio.Event()
        self.readings_committed = 0
        self.readings_refused = 0
        self.scanner.register(Matcher(), self._discover)

    # Configuration

    def _configure(self) -> dict[str, Sensor]:
        sensors: dict[str, Sensor] = {}
        for device in self._store.devices(self._org_id):
            if device.type != DEVICE_TYPE or not device.enabled:
                continue
            try:
                found = setup(self._store, device)
            except ValueError as error:
                message = f"{device.name} is not listened to: {error}"
                log.error(message)
                self._store.record_event(self._org_id, "device.config_error", "warning",
                                         message, device.id)  # fmt: skip
                continue
            address = found.connection.address
            old = self.sensors.get(address)
            availability = (
                old.availability if old and old.device_id == device.id else
                Availability(self.settings.stale_multiple, self.settings.stale_default_s,
                             since=time.monotonic())
            )  # fmt: skip
            sensor = Sensor(found, Decoder(found.connection.family, found.connection.bind_key),
                            availability)  # fmt: skip
            for point in self._store.points(device.org_id, device.id):
                sensor.intervals[point.id] = point.interval_s
            sensors[address] = sensor
        return sensors

    def _fingerprint(self) -> frozenset[tuple[str, int]]:
        return frozenset(
            (d.id, d.version) for d in self._store.devices(self._org_id) if d.type == DEVICE_TYPE
        )

    def _apply(self, sensors: dict[str, Sensor]) -> None:
        for unregister in self._unregister:
            unregister()
        new = [a for a in sensors if a not in self.sensors]
        self.sensors = sensors
        self._unregister = [
            self.scanner.register(Matcher(address=a), self._on_sensor_advert) for a in sensors
        ]
        targets = {}
        for s in sensors.values():
            if s.setup.gatt:
                target = GattTarget(s.device_id, s.setup.connection.address, s.setup.device.name,
                                    s.setup.gatt)  # fmt: skip
                old = self.gatt.targets.get(s.device_id)
                if old is not None:  # a changed device keeps its schedule
                    target.last_poll, target.polls = old.last_poll, old.polls
                targets[s.device_id] = target
        self.gatt.set_targets(targets)
        # A sensor adopted from discovery stores the advert it was last heard with, at once
        # (unless that advert is so old that the sensor would be stale already).
        now = time.monotonic()
        for address in new:
            advert = self.scanner.latest.get(address)
            if advert is not None and now - advert.at < sensors[address].availability.stale_after_s:
                self._on_sensor_advert(advert)

    # Running

    async def run(self) -> None:
        """Scan, poll and watch until cancelled; reconfigure when BLE devices change."""
        if not self.settings.enabled:
            log.info("ble: disabled by settings")
            await asyncio.Event().wait()
        # Sensors first, so the scanner's first adverts already find them.
        seen = await asyncio.to_thread(self._fingerprint)
        self._apply(await asyncio.to_thread(self._configure))
        tasks = [
            asyncio.create_task(self.scanner.run(), name=f"ble-scan:{self.radio.adapter}"),
            asyncio.create_task(self.gatt.run(), name=f"ble-gatt:{self.radio.adapter}"),
            asyncio.create_task(self._watch_staleness(), name="ble-stale"),
            asyncio.create_task(self._record_events(), name="ble-events"),
        ]
        try:
            while True:
                log.info("ble: listening for %d sensor(s) on %s", len(self.sensors),
                         self.radio.adapter)  # fmt: skip
                self._reload.clear()
                while await asyncio.to_thread(self._fingerprint) == seen:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._reload.wait(), RELOAD_CHECK_S)
                    if self._reload.is_set():
                        break
                seen = await asyncio.to_thread(self._fingerprint)
                self._apply(await asyncio.to_thread(self._configure))
        finally:
            for task in reversed(tasks):
                await cancel_and_wait(task)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.radio.close(), RADIO_CLOSE_S)

    # Adverts

    def _discover(self, advert: Advert) -> None:
        entry = self.nearby.pop(advert.address, None)
        sensor = self.sensors.get(advert.address)
        if entry is not None:
            self.nearby[advert.address] = entry  # last heard, last in order
        elif len(self.nearby) >= NEARBY_MAX:
            self.nearby.pop(next(iter(self.nearby)))
        if entry is None or (entry.family is None and advert.at - entry.detected_at > REDETECT_S):
            family = sensor.setup.connection.family if sensor else detect(advert)
            entry = Nearby(advert.address, family, advert.at)
            entry.decoder = Decoder(family) if family else None
            self.nearby[advert.address] = entry
        decoded = None
        if entry.decoder is not None and sensor is None:
            try:
                decoded = entry.decoder.decode(advert)
            except Exception:  # a stranger's malformed advert
                log.debug("ble: cannot parse an advert of %s", advert.address, exc_info=True)
        entry.heard(advert, decoded)

    def _on_sensor_advert(self, advert: Advert) -> None:
        sensor = self.sensors.get(advert.address)
        if sensor is None:
            return
        try:
            decoded = sensor.decoder.decode(advert)
        except Exception as error:  # a malformed advert is dropped, never stored as a value
            log.debug("ble: %s sent an advert its parser rejects: %s", advert.address, error)
            return
        if decoded is None:
            return
        sensor.adverts += 1
        sensor.rssi = advert.rssi
        sensor.model = decoded.model or sensor.model
        sensor.last_contact_ms = advert.ts_ms
        if decoded.locked and not sensor.locked:
            self._event(sensor, "ble.decrypt_failed", "warning",
                        f"{sensor.setup.device.name}: encrypted adverts; the bind key is "
                        "missing or wrong, so only RSSI is stored")  # fmt: skip
        sensor.locked = decoded.locked
        nearby = self.nearby.get(advert.address)
        if nearby is not None:
            nearby.heard(advert, decoded)
        was = sensor.availability.online
        if sensor.availability.heard(advert.at) and was is False:
            self._event(sensor, "device.online", "info",
                        f"{sensor.setup.device.name} is heard again")  # fmt: skip
        readings = []
        for m in decoded.measurements:
            point_id = sensor.setup.measurements.get(m.key)
            if point_id is not None and sensor.due(point_id, advert.at):
                readings.append(Reading(point_id, advert.ts_ms, m.value, Quality.GOOD))
        self._emit(readings)

    async def _watch_staleness(self) -> None:
        while True:
            await asyncio.sleep(min(STALE_CHECK_S, self.settings.stale_default_s / 4))
            now = time.monotonic()
            for sensor in list(self.sensors.values()):
                if sensor.availability.check(now):
                    heard = sensor.availability.last_heard or sensor.availability.since
                    silent = now - heard
                    ts = now_ms()
                    self._emit([Reading(pid, ts, None, Quality.STALE)
                                for pid in sensor.setup.measurements.values()])  # fmt: skip
                    sensor.stored_at.clear()
                    limit = sensor.availability.stale_after_s
                    self._event(sensor, "device.offline", "warning",
                                f"{sensor.setup.device.name} has not been heard for "
                                f"{silent:.0f} s", {"stale_after_s": limit})  # fmt: skip

    def _event(self, sensor: Sensor, type_: str, severity: str, message: str,
               data: dict[str, Any] | None = None) -> None:  # fmt: skip
        log.info(message)
        self._events.put_nowait((sensor.device_id, type_, severity, message, data or {}))

    async def _record_events(self) -> None:
        while True:
            device_id, type_, severity, message, data = await self._events.get()
            try:
                await asyncio.to_thread(self._store.record_event, self._org_id, type_, severity,
                                        message, device_id, data)  # fmt: skip
            except Exception as error:  # an event lost to a full disk must not stop the radio
                log.warning("event %s not recorded: %s", type_, error)

    def _emit(self, readings: list[Reading]) -> None:
        if not readings:
            return
        try:
            future = self._store.submit_readings(readings)
        except Exception as error:  # a full backlog: counted and logged, the radio goes on
            self.readings_refused += len(readings)
            log.warning("ble: the store refused %d readings: %s", len(readings), error)
            return
        count = len(readings)

        def committed(done: Any) -> None:
            if done.exception() is None:
                self.readings_committed += count
            else:
                self.readings_refused += count

        future.add_done_callback(committed)

    # Discovery and adoption

    def nearby_sensors(self) -> list[dict[str, Any]]:
        """Every sensor heard nearby whose family is known, by address."""
        return [
            n.as_data(self.sensors[a].device_id if a in self.sensors else None)
            for a, n in sorted(self.nearby.items()) if n.family is not None
        ]  # fmt: skip

    def scan(self, seconds: float = ACTIVE_SCAN_S) -> float:
        """Scan actively for a while (names and scan responses); returns the duration."""
        duration = min(max(seconds, 1.0), ACTIVE_SCAN_MAX_S)
        self.scanner.request_active(duration)
        return duration

    def add_from_body(self, store: Store, owner: Owner, body: dict[str, Any]) -> Device:
        """A BLE device from an API body; points default to what the sensor was heard sending."""
        connection = body.get("connection") or {}
        address = str(connection.get("address", "")).upper()
        heard = self.nearby.get(address)
        # A copy taken in one step: the loop thread may be adding values meanwhile.
        values = [(k, u) for k, (_, u) in heard.values.copy().items()] if heard else []
        return add_device(
            store, owner, name=body["name"], connection=connection,
            points=body.get("points") or (), heard=values, site_id=body.get("site_id"),
            group_id=body.get("group_id"), tags=body.get("tags") or (),
            device_id=body.get("id") or "", movement=body.get("movement"),
        )  # fmt: skip

    # What the API asks of a driver

    def _sensor(self, device_id: str) -> Sensor | None:
        return next((s for s in self.sensors.values() if s.device_id == device_id), None)

    def status(self, device_id: str) -> str | None:
        """online or offline once heard of (or given up on); else None."""
        sensor = self._sensor(device_id)
        if sensor is None or sensor.availability.online is None:
            return None
        return "online" if sensor.availability.online else "offline"

    def health(self, device_id: str) -> dict[str, Any] | None:
        """Last advert, RSSI, learned interval and stale timeout, GATT polls, the scanner."""
        sensor = self._sensor(device_id)
        if sensor is None:
            return None
        out = {
            "last_contact_ms": sensor.last_contact_ms,
            "rssi": sensor.rssi,
            "family": sensor.setup.connection.family,
            "model": sensor.model,
            "adverts": sensor.adverts,
            "advert_interval_s": sensor.availability.interval_s,
            "stale_after_s": sensor.availability.stale_after_s,
            "encrypted_unreadable": sensor.locked,
            "scanner": self.scanner.status(),
        }
        target = self.gatt.targets.get(device_id)
        if target is not None:
            out["gatt"] = {"polls": target.polls, "failures": target.failures,
                           "last_error": target.last_error}  # fmt: skip
            if target.polls:
                out["poll_success_rate"] = 1 - target.errors / target.polls
        if sensor.locked:
            out["last_error"] = "encrypted adverts: the bind key is missing or wrong"
        elif target is not None and target.last_error:
            out["last_error"] = f"GATT poll: {target.last_error}"
        return out

    async def command(self, device_id: str, body: dict[str, Any], actor: str) -> dict[str, Any]:
        """`scan` (active scan for `seconds`), `poll` (a GATT poll now) or `refresh_config`."""
        name = body.get("command")
        if name == "scan":
            seconds = body.get("seconds", ACTIVE_SCAN_S)
            if not isinstance(seconds, int | float) or isinstance(seconds, bool):
                raise CommandRefused("seconds must be a number")
            return {"scanning_s": self.scan(float(seconds))}
        if name == "poll":
            if not self.gatt.request(device_id):
                raise CommandRefused("this device has no GATT points to poll")
            return {"polling": True}
        if name == "refresh_config":
            self._reload.set()
            return {"reloading": True}
        raise CommandRefused(f"BLE devices take scan, poll and refresh_config, not {name!r}")

    def samples(self) -> Iterable[Sample]:
        """The scanner's counters and each sensor's availability and signal."""
        adapter = {"adapter": self.radio.adapter}
        yield Sample("edge_ble_adverts", "BLE adverts heard.", "counter",
                     self.scanner.adverts, adapter)  # fmt: skip
        yield Sample("edge_ble_scanner_restarts", "Scanner restarts by the watchdog.",
                     "counter", self.scanner.restarts, adapter)  # fmt: skip
        yield Sample("edge_ble_readings_committed", "BLE readings committed.", "counter",
                     self.readings_committed, adapter)  # fmt: skip
        for sensor in self.sensors.values():
            labels = {**adapter, "device": sensor.device_id}
            yield Sample("edge_ble_device_online", "1 while the sensor is heard.", "gauge",
                         1.0 if sensor.availability.online else 0.0, labels)  # fmt: skip
            if sensor.rssi is not None:
                yield Sample("edge_ble_device_rssi_dbm", "Signal of the sensor's last advert.",
                             "gauge", float(sensor.rssi), labels)  # fmt: skip
