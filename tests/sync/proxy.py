"""A fault-injecting TCP proxy on loopback, standing for the uplink between a gateway and its
upstream.

`FaultProxy` owns its own asyncio loop in a daemon thread, listens on 127.0.0.1 and forwards
every client connection to one target host:port. The test thread switches faults at any time:

- `mode = "pass"` forwards both ways; `"refuse"` stops listening, so a new connection gets
  ECONNREFUSED (httpx.ConnectError) and open ones are cut; `"reset"` reads a whole request,
  then sends a TCP RST; `"blackhole"` reads requests and never answers.
- `delay_s` is one-way latency: bytes read from one side are written to the other delay_s
  later, and an injected answer is written delay_s after its request was read; so a forwarded
  request costs at least twice delay_s (not per chunk), an injected answer at least delay_s.
  Connection set-up is not delayed.
- `answer(status, headers, body, times=n)` has the proxy itself answer the next n requests
  (in "pass" mode; the other modes win over it), then forward again.

Every request read is kept in `requests` as a `Seen`: method, target and fate, plus (left out
of comparisons, so `Seen("GET", "/v1/me", "forwarded")` still matches) its headers as sent
and the `time.monotonic()` at which the proxy had read it whole.

How requests are told apart: the client-to-upstream direction is read as HTTP/1.1 (request
line, headers, a Content-Length or chunked body), so every fault applies per request, also on
a kept-alive connection from a client's pool; the upstream-to-client direction is spliced
byte for byte. Limitations that follow:

- The client must not pipeline (httpx does not) nor send `Expect: 100-continue`; CONNECT and
  protocol upgrades are not supported.
- A switch to "reset", "blackhole" or an answer applies from the next request read on each
  connection; a response already on its way still arrives. Only "refuse" cuts at once.
- Each client connection gets its own upstream connection, opened at its first forwarded
  request. When the upstream closes it (idle keep-alive timeout, a stopped upstream), the proxy
  closes the client connection too; when the upstream cannot be reached, the proxy resets the
  client connection, so the client sees a read error (httpx.ReadError or RemoteProtocolError),
  not a ConnectError: its connection to the proxy did succeed.
"""

from __future__ import annotations

import asyncio
import http
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

Mode = Literal["pass", "refuse", "reset", "blackhole"]
MODES: Final = ("pass", "refuse", "reset", "blackhole")
HOST: Final = "127.0.0.1"
# Largest request head or chunk-size line read at once; the API's heads are well under 8 KiB.
READ_LIMIT: Final = 1 << 20
CHUNK: Final = 1 << 16
# How long the test thread waits for the loop to start, switch a mode or close; longer means
# the loop is stuck, which should fail the test rather than hang it.
CONTROL_TIMEOUT_S: Final = 10.0
# A closing connection gets this long to flush what it still has to send.
CLOSE_GRACE_S: Final = 2.0
# SO_LINGER on with a zero timeout: close() sends RST instead of FIN.
LINGER_RESET: Final = struct.pack("ii", 1, 0)


@dataclass(frozen=True, slots=True)
class Seen:
    """One request the proxy read: method, target and fate (forwarded, answered, reset,
    blackholed, or refused when it raced a switch to "refuse")."""

    method: str
    target: str
    fate: str
    # As read, in order; names keep the client's case (`header` looks them up in any case).
    headers: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    # time.monotonic() once the whole request was read, before its fate applied.
    at: float = field(default=0.0, compare=False, repr=False)

    def header(self, name: str) -> str | None:
        """The value of the request's first header called `name` (any case), if it had one."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass(slots=True)
class _Answer:
    head: bytes
    body: bytes
    close: bool
    left: int | None


class _Link:
    """One client connection and, once a request has been forwarded, its upstream connection."""

    __slots__ = ("client_reader", "client_writer", "pump", "up_reader", "up_writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.client_reader = reader
        self.client_writer = writer
        self.up_reader: asyncio.StreamReader | None = None
        self.up_writer: asyncio.StreamWriter | None = None
        self.pump: asyncio.Task[None] | None = None


class FaultProxy:
    """A loopback TCP proxy to `target_host:target_port` whose faults the test thread switches.

    `port=0` lets the OS choose; the chosen port stays the proxy's across "refuse" and back.
    """

    def __init__(self, target_host: str, target_port: int, *, port: int = 0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self._port = port
        self._lock = threading.Lock()
        self._mode: Mode = "pass"
        self._delay_s = 0.0
        self._answers: deque[_Answer] = deque()
        self._connections = 0
        self._requests_answered = 0
        self._bytes_up = 0
        self._seen: list[Seen] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fault-proxy", daemon=True
        )
        self._closed = False

    # -- control, from the test thread

    def start(self) -> FaultProxy:
        """Start the loop thread and listen; returns the proxy."""
        self._thread.start()
        self._call(self._listen())
        return self

    def close(self) -> None:
        """Stop listening, close every connection, stop the loop and join its thread."""
        if self._closed:
            return
        self._closed = True
        if not self._thread.is_alive():
            self._loop.close()
            return
        try:
            self._call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CONTROL_TIMEOUT_S)
            self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The port the proxy listens on (chosen by the OS when 0 was asked)."""
        return self._port

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, without a path."""
        return f"http://{HOST}:{self._port}"

    @property
    def mode(self) -> Mode:
        """The current fault: pass, refuse, reset or blackhole."""
        with self._lock:
            return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        # Waited for, so that when the setter returns the listener and connections match it.
        self._call(self._switch(mode))

    @property
    def delay_s(self) -> float:
        """One-way latency, in seconds, of forwarded bytes and injected answers."""
        with self._lock:
            return self._delay_s

    @delay_s.setter
    def delay_s(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("delay_s must be >= 0")
        with self._lock:
            self._delay_s = float(seconds)

    def answer(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | Mapping[str, Any] = b"",
        times: int | None = 1,
    ) -> None:
        """Answer the next `times` requests (None: until `clear_answers`) with this response.

        Calls queue up: answers are given in the order they were asked. A mapping body is sent
        as JSON. Content-Length is added unless given; `Connection: close` closes the client
        connection after the answer.
        """
        if times is not None and times < 1:
            raise ValueError("times must be >= 1, or None for every request")
        headers = dict(headers or {})
        names = {name.lower() for name in headers}
        if isinstance(body, Mapping):
            payload = json.dumps(body).encode()
            if "content-type" not in names:
                headers["Content-Type"] = "application/json"
        else:
            payload = body.encode() if isinstance(body, str) else bytes(body)
        if "content-length" not in names:
            headers["Content-Length"] = str(len(payload))
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items())]
        close = any(k.lower() == "connection" and v.lower() == "close" for k, v in headers.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        with self._lock:
            self._answers.append(_Answer(head, payload, close, times))

    def clear_answers(self) -> None:
        """Forget the answers not given yet."""
        with self._lock:
            self._answers.clear()

    @property
    def connections(self) -> int:
        """Client connections accepted so far."""
        with self._lock:
            return self._connections

    @property
    def requests_answered(self) -> int:
        """Requests the proxy answered itself (see `answer`)."""
        with self._lock:
            return self._requests_answered

    @property
    def bytes_forwarded_up(self) -> int:
        """Bytes written towards the upstream: request heads and bodies as sent on the wire."""
        with self._lock:
            return self._bytes_up

    @property
    def requests(self) -> list[Seen]:
        """Every request read so far, oldest first, with what the proxy did with it."""
        with self._lock:
            return list(self._seen)

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("FaultProxy is controlled from outside its own loop")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CONTROL_TIMEOUT_S)

    # -- the loop's side

    async def _listen(self) -> None:
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY on accepted sockets only then, and
        # without it small keep-alive responses wait for delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            # Rebinding the same port after "refuse" must not trip over TIME_WAIT connections.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, self._port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._on_client, sock=sock, limit=READ_LIMIT)

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        await self._cut_all()
        await asyncio.wait_for(server.wait_closed(), CONTROL_TIMEOUT_S)

    async def _cut_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _switch(self, mode: Mode) -> None:
        with self._lock:
            old, self._mode = self._mode, mode
        if mode == "refuse" and old != "refuse":
            await self._stop_listening()
        elif old == "refuse" and mode != "refuse":
            await self._listen()

    async def _shutdown(self) -> None:
        await self._stop_listening()
        await self._cut_all()
        await self._loop.shutdown_default_executor()

    def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self._connections += 1
        task = self._loop.create_task(self._handle(_Link(reader, writer)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, link: _Link) -> None:
        try:
            # A connection accepted in the same tick the listener closed still gets refused.
            if self.mode != "refuse":
                await self._relay(link)
        except (OSError, EOFError, ValueError, asyncio.LimitOverrunError):
            pass  # a side went away or sent what is not HTTP/1.1: both sides get closed below
        finally:
            await self._close_link(link)

    async def _relay(self, link: _Link) -> None:
        """Read requests one by one and give each its fate."""
        reader, writer = link.client_reader, link.client_writer
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, headers = _parse_head(head)
            length, chunked = _framing(headers)
            body = await (_read_chunked(reader) if chunked else reader.readexactly(length))
            read_at = time.monotonic()
            fate, canned = self._decide()
            with self._lock:
                self._seen.append(Seen(method, target, fate, headers, read_at))
            if fate == "refused":
                return
            if fate == "reset":
                _reset(writer)
                return
            if fate == "blackholed":
                while await reader.read(CHUNK):
                    pass
                return
            if canned is not None:
                await self._sleep_delay()
                writer.write(canned.head if method == "HEAD" else canned.head + canned.body)
                await writer.drain()
                if canned.close:
                    return
                continue
            await self._forward(link, head + body)

    def _decide(self) -> tuple[str, _Answer | None]:
        with self._lock:
            if self._mode == "refuse":
                return "refused", None
            if self._mode == "reset":
                return "reset", None
            if self._mode == "blackhole":
                return "blackholed", None
            if not self._answers:
                return "forwarded", None
            canned = self._answers[0]
            if canned.left is not None:
                canned.left -= 1
                if canned.left == 0:
                    self._answers.popleft()
            self._requests_answered += 1
            return "answered", canned

    async def _forward(self, link: _Link, data: bytes) -> None:
        if link.up_writer is None:
            try:
                link.up_reader, link.up_writer = await asyncio.open_connection(
                    self.target_host, self.target_port, limit=READ_LIMIT
                )
            except OSError:
                _reset(link.client_writer)
                raise
            link.pump = self._loop.create_task(self._pump(link))
        await self._sleep_delay()
        link.up_writer.write(data)
        with self._lock:
            self._bytes_up += len(data)
        await link.up_writer.drain()

    async def _pump(self, link: _Link) -> None:
        """Splice upstream-to-client bytes; when the upstream closes, close the client too."""
        assert link.up_reader is not None
        reader, writer = link.up_reader, link.client_writer
        # Chunks in flight with the loop time each is due: a response written in several
        # chunks arrives delay_s late as a whole, not delay_s per chunk.
        due: deque[tuple[float, bytes]] = deque()
        ended = False
        try:
            while not ended or due:
                wait = due[0][0] - self._loop.time() if due else None
                if wait is not None and wait <= 0:
                    writer.write(due.popleft()[1])
                    await writer.drain()
                    continue
                if ended:
                    await asyncio.sleep(wait or 0)
                    continue
                try:
                    data = await asyncio.wait_for(reader.read(CHUNK), wait)
                except TimeoutError:
                    continue  # the oldest chunk is due; a cancelled read loses no bytes
                ended = not data
                if data:
                    due.append((self._loop.time() + self.delay_s, data))
        except OSError:
            pass
        finally:
            # The client would have seen the upstream close had it been connected directly; its
            # read of the next request then ends and `_handle` closes the rest.
            link.client_writer.close()

    async def _sleep_delay(self) -> None:
        delay = self.delay_s
        if delay > 0:
            await asyncio.sleep(delay)

    async def _close_link(self, link: _Link) -> None:
        if link.pump is not None and link.pump is not asyncio.current_task():
            link.pump.cancel()
            await asyncio.wait([link.pump])
        for writer in (link.client_writer, link.up_writer):
            if writer is None:
                continue
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), CLOSE_GRACE_S)
            except TimeoutError:
                # A peer that reads nothing would keep unsent bytes, and the socket, forever.
                writer.transport.abort()
                await asyncio.sleep(0)  # lets the transport's own close callback run
            except OSError:
                pass


def _parse_head(head: bytes) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """Method, target and headers (name, value) of a request head."""
    lines = head.decode("latin-1").strip("\r\n").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return method, target, tuple(headers)


def _framing(headers: tuple[tuple[str, str], ...]) -> tuple[int, bool]:
    """Content-Length and whether the body is chunked."""
    length, chunked = 0, False
    for name, value in headers:
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding":
            chunked = "chunked" in value.lower()
    return length, chunked


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked body as it came on the wire, trailers included, so it can be forwarded."""
    raw = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        raw += line
        size = int(line.split(b";", 1)[0], 16)
        if size == 0:
            while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                raw += trailer
            raw += trailer
            return bytes(raw)
        raw += await reader.readexactly(size + 2)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST, as a crashed peer or a middlebox dropping the flow would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    writer.transport.abort()
