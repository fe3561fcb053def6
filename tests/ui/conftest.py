"""Fixtures for the UI tests: a gateway with users, signed-in HTTP clients, and Debian's
chromium driven by Playwright, with screenshots saved under tests/ui/screenshots/."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from edge import settings as settings_mod
from edge.store import Store
from tests.conftest import RunningGateway
from tests.drivers.ble.conftest import ble_process, ble_simulator

__all__ = ["ble_process", "ble_simulator"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A 10-11" tablet held in landscape.
TABLET = {"width": 1180, "height": 820}
SCREENSHOTS = Path(__file__).parent / "screenshots"
PASSWORD = "correct horse battery"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
TOKEN = re.compile(r'name="(?:_csrf|form_token)" value="([^"]+)"')


def form_token(html: str) -> str:
    """The first CSRF (or sign-in form) token in a page."""
    found = TOKEN.search(html)
    assert found, "the page has no form token"
    return found.group(1)


@dataclass
class Ui:
    """A running gateway with its UI, and ways to sign people in."""

    gateway: RunningGateway
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def store(self) -> Store:
        return self.gateway.runtime.store

    def user(self, username: str, role: str) -> None:
        self.store.create_user(self.store.organization.id, username, PASSWORD, role)

    def client(self) -> httpx.Client:
        made = httpx.Client(base_url=self.url, timeout=20)
        self.clients.append(made)
        return made

    def signed_in(self, username: str = "admin", role: str = "admin") -> httpx.Client:
        """An HTTP client with a live session of a (new) user of this role."""
        if not any(u.username == username for u in self.store.users(self.store.organization.id)):
            self.user(username, role)
        client = self.client()
        page = client.get("/login")
        sent = {"form_token": form_token(page.text), "username": username, "password": PASSWORD}
        answer = client.post("/login", data=sent)
        assert answer.status_code == 303, answer.text
        return client

    def csrf(self, client: httpx.Client, path: str = "/") -> str:
        """The session's CSRF token, as its pages carry it."""
        return form_token(client.get(path).text)


@pytest.fixture
def ui(gateway_factory) -> Iterator[Ui]:
    """A gateway (no demo devices) whose UI tests sign in to."""
    made = Ui(gateway_factory())
    yield made
    for client in made.clients:
        client.close()


@pytest.fixture
def ble_ui(ble_simulator, gateway_factory, tmp_path) -> Iterator[Ui]:
    """A gateway whose BLE radio hears the virtual sensors of a simulator process."""
    # The simulator is set up first so that it outlives the gateway at teardown.
    settings = settings_mod.load(
        None, {}, data_dir=str(tmp_path / "ble"), http={"host": "127.0.0.1", "port": 0},
        ble={"transport": "bumble-virtual", "adapter": ble_simulator},
    )  # fmt: skip
    made = Ui(gateway_factory(settings_=settings))
    yield made
    for client in made.clients:
        client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium, headless, shared by a module's tests. Not longer: while Playwright's
    sync API is open it holds an event loop on this thread, and asyncio.run refuses to start
    another, so tests after the module could not run theirs."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium (apt-get install chromium)"
    manager = sync_playwright()
    with manager as playwright:
        # One worker thread for the files Playwright writes, started now by _warm_up: a pool
        # that grows on demand would start threads inside tests, which the leak guard fails.
        manager._loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        _warm_up(launched)
        yield launched
        launched.close()


def _warm_up(browser: object) -> None:
    """Let Playwright start the worker thread it keeps for the session (it saves files
    through it), so the per-test leak guard does not count it as a test's leftover."""
    context = browser.new_context()
    page = context.new_page()
    page.set_content("<p>warming up</p>")
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(2):
            page.screenshot(path=f"{tmp}/{n}.png")
    context.close()


@dataclass
class Tab:
    """A browser tab on the UI, which records every host it asks for."""

    page: object
    base: str
    hosts: set[str]

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def shot(self, name: str) -> Path:
        """Save a full-page screenshot for review; prints where."""
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path

    def sign_in(self, username: str = "admin") -> None:
        self.go("/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button:has-text('Sign in')")
        self.page.wait_for_url(self.base + "/")


@pytest.fixture
def tab(browser, ui) -> Iterator[Tab]:
    """A fresh browser context on a tablet-sized viewport; fails if any request left the host."""
    context = browser.new_context(viewport=TABLET)
    page = context.new_page()
    page.set_default_timeout(15_000)
    hosts: set[str] = set()
    page.on("request", lambda r: hosts.add(urlsplit(r.url).hostname or r.url.split(":")[0]))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    made = Tab(page, ui.url, hosts)
    try:
        yield made
    finally:
        context.close()
    foreign = {h for h in hosts if h not in LOCAL_HOSTS and h not in ("data", "blob")}
    assert not foreign, f"requests to other hosts: {foreign}"
    assert not errors, f"script errors: {errors}"


@pytest.fixture
def signed_in_tab(tab, ui) -> Tab:
    """A tab signed in as an admin."""
    ui.user("admin", "admin")
    tab.sign_in()
    return tab


Shot = Callable[[str], Path]
