"""Sign-in, first run, sessions, CSRF and roles, over real HTTP against a running gateway."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge.models import now_ms
from edge.settings import load
from tests.ui.conftest import PASSWORD, form_token
from web.app import create_app


def test_first_visit_creates_the_admin_and_then_the_page_is_gone(ui):
    client = ui.client()
    assert client.get("/").headers["location"] == "/login?next=/"
    assert client.get("/login").headers["location"] == "/setup"
    page = client.get("/setup")
    answer = client.post(
        "/setup",
        data={
            "form_token": form_token(page.text),
            "username": "boss",
            "password": PASSWORD,
            "password_again": PASSWORD,
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    assert "boss" in client.get("/").text
    [user] = ui.store.users(ui.store.organization.id)
    assert (user.username, user.role) == ("boss", "admin")
    # A second visitor cannot make themselves admin: first run is over.
    other = ui.client()
    assert other.get("/setup").headers["location"] == "/login"
    late = other.post(
        "/setup",
        data={
            "form_token": form_token(page.text),
            "username": "eve",
            "password": PASSWORD,
            "password_again": PASSWORD,
        },
    )
    assert late.status_code == 422
    assert [u.username for u in ui.store.users(ui.store.organization.id)] == ["boss"]


def test_setup_keeps_the_username_when_the_passwords_differ(ui):
    client = ui.client()
    page = client.get("/setup")
    answer = client.post(
        "/setup",
        data={
            "form_token": form_token(page.text),
            "username": "boss",
            "password": PASSWORD,
            "password_again": "other one!",
        },
    )
    assert answer.status_code == 422
    assert "The two passwords differ." in answer.text
    assert 'value="boss"' in answer.text
    assert ui.store.user_count() == 0


def test_passwords_are_stored_as_argon2id_hashes(ui):
    ui.user("tech", "technician")
    rows = ui.store._read(lambda c: list(c.execute("SELECT password_hash FROM users")))
    assert rows[0][0].startswith("$argon2id$")
    assert PASSWORD not in rows[0][0]


def test_wrong_password_and_forged_sign_in_form_are_refused(ui):
    ui.user("admin", "admin")
    client = ui.client()
    token = form_token(client.get("/login").text)
    wrong = client.post(
        "/login", data={"form_token": token, "username": "admin", "password": "not the password"}
    )
    assert wrong.status_code == 401 and "Wrong username or password." in wrong.text
    assert 'value="admin"' in wrong.text  # the name stays as typed
    forged = ui.client().post(
        "/login", data={"form_token": token, "username": "admin", "password": PASSWORD}
    )
    assert forged.status_code == 403
    assert "edge_session" not in forged.cookies


def test_sign_in_returns_to_the_page_asked_for_but_never_to_another_site(ui):
    ui.user("admin", "admin")
    client = ui.client()
    for asked, landed in (
        ("/sync", "/sync"),
        ("//evil.example/x", "/"),
        ("https://x.y/", "/"),
        ("/\\evil.example", "/"),
    ):
        token = form_token(client.get("/login").text)
        answer = client.post(
            "/login",
            data={"form_token": token, "username": "admin", "password": PASSWORD, "next": asked},
        )
        assert answer.headers["location"] == landed


def test_a_post_without_the_sessions_csrf_token_is_refused(ui):
    admin = ui.signed_in()
    other = ui.signed_in("second", "admin")
    theirs = ui.csrf(other)
    for token in (None, "made-up", theirs):
        data = {"name": "sneaky", "scopes": "admin"} | ({"_csrf": token} if token else {})
        answer = admin.post("/settings/keys", data=data)
        assert answer.status_code == 403, token
        assert "did not come from this gateway" in answer.text
    assert ui.store.api_keys(ui.store.organization.id) == []
    ok = admin.post(
        "/settings/keys", data={"name": "fine", "scopes": "devices.read", "_csrf": ui.csrf(admin)}
    )
    assert ok.status_code == 201
    # htmx sends the token as a header instead of a field.
    header = admin.post(
        "/settings/keys",
        data={"name": "hx", "scopes": "devices.read"},
        headers={"X-CSRF-Token": ui.csrf(admin), "HX-Request": "true"},
    )
    assert header.status_code == 201
    assert len(ui.store.api_keys(ui.store.organization.id)) == 2


def test_every_ui_form_post_needs_the_csrf_token(ui, settings):
    admin = ui.signed_in()
    app = create_app(ui.gateway.runtime)
    posts = sorted(
        route.path
        for route in app.routes
        if "POST" in getattr(route, "methods", ())
        and not route.path.startswith(("/api", "/v1"))
        and route.path not in ("/login", "/setup")
    )
    assert len(posts) >= 12
    for path in posts:
        concrete = path.replace("{", "").replace("}", "").replace(":str", "")
        answer = admin.post(concrete, data={"confirmed": "yes"})
        assert answer.status_code == 403, (path, answer.status_code)


def test_sign_out_ends_the_session(ui):
    client = ui.signed_in()
    cookie = client.cookies["edge_session"]
    assert client.post("/logout", data={"_csrf": ui.csrf(client)}).status_code == 303
    replay = ui.client()
    replay.cookies.set("edge_session", cookie)
    assert replay.get("/").status_code == 303
    assert replay.get("/").headers["location"].startswith("/login")


def _age_sessions(ui, seen_ms_ago: int = 0, expired: bool = False) -> None:
    now = now_ms()
    ui.store._write(lambda c: c.execute("UPDATE sessions SET seen_at = ?", (now - seen_ms_ago,)))
    if expired:
        ui.store._write(lambda c: c.execute("UPDATE sessions SET expires_at = ?", (now - 1,)))


def test_an_idle_session_expires(ui):
    client = ui.signed_in()
    assert client.get("/").status_code == 200
    idle_ms = ui.gateway.runtime.settings.ui.session_idle_min * 60_000
    _age_sessions(ui, seen_ms_ago=idle_ms - 60_000)
    assert client.get("/").status_code == 200  # still inside the idle limit; clock restarts
    _age_sessions(ui, seen_ms_ago=idle_ms + 1_000)
    answer = client.get("/devices?status=online")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/devices%3Fstatus%3Donline"
    # htmx is told to load the sign-in page rather than swap it into a fragment.
    hx = client.get("/", headers={"HX-Request": "true"})
    assert hx.headers["HX-Redirect"].startswith("/login")


def test_a_session_ends_at_its_lifetime_however_busy(ui):
    client = ui.signed_in()
    _age_sessions(ui, expired=True)
    assert client.get("/").status_code == 303
    assert client.post("/logout", data={}).status_code == 303  # the guard, not a 500


@pytest.mark.parametrize(
    ("role", "path", "method", "allowed"),
    [
        ("viewer", "/", "GET", True),
        ("viewer", "/devices/new", "GET", False),
        ("viewer", "/rules/new", "GET", False),
        ("viewer", "/settings/keys", "POST", False),
        ("viewer", "/alarms/alm_x/ack", "POST", False),
        ("technician", "/devices/new", "GET", True),
        ("technician", "/settings/keys", "POST", False),
        ("technician", "/settings/users", "POST", False),
        ("technician", "/sync/test", "POST", False),
        ("admin", "/settings/users", "POST", True),
    ],
)
def test_roles_are_enforced_by_the_server(ui, role, path, method, allowed):
    client = ui.signed_in(f"someone-{role}", role)
    data = {
        "_csrf": ui.csrf(client),
        "name": "x",
        "scopes": "devices.read",
        "username": "newperson",
        "password": PASSWORD,
        "role": "viewer",
    }
    answer = client.request(method, path, data=data if method == "POST" else None)
    if allowed:
        assert answer.status_code in (200, 201, 303), answer.text
    else:
        assert answer.status_code == 403
        assert "may not do this" in answer.text


def test_a_viewer_sees_no_keys_or_users(ui):
    ui.store.create_api_key(ui.store.organization.id, "secret-integration", ["admin"])
    viewer = ui.signed_in("watcher", "viewer")
    page = viewer.get("/settings").text
    assert "secret-integration" not in page and 'id="users"' not in page
    assert "Retention" in page


def test_the_last_admin_cannot_be_demoted_or_disabled(ui):
    admin = ui.signed_in()
    me = ui.store.users(ui.store.organization.id)[0]
    for action, extra in (("role", {"role": "viewer"}), ("disable", {})):
        answer = admin.post(
            f"/settings/users/{me.id}/{action}",
            data={"_csrf": ui.csrf(admin), "confirmed": "yes", **extra},
        )
        assert answer.status_code == 303
        assert "at least one enabled admin" in admin.get("/settings").text
    assert ui.store.user(ui.store.organization.id, me.id).role == "admin"


def test_disabling_a_user_ends_their_sessions(ui):
    admin = ui.signed_in()
    tech = ui.signed_in("tech", "technician")
    tech_id = next(u.id for u in ui.store.users(ui.store.organization.id) if u.username == "tech")
    ask = admin.post(f"/settings/users/{tech_id}/disable", data={"_csrf": ui.csrf(admin)})
    assert "Disable this user?" in ask.text  # asked first
    assert tech.get("/").status_code == 200
    admin.post(
        f"/settings/users/{tech_id}/disable", data={"_csrf": ui.csrf(admin), "confirmed": "yes"}
    )
    assert tech.get("/").status_code == 303


def test_edge_users_create_makes_a_user_who_can_sign_in(ui, tmp_path):
    # In its own process, as a technician runs it: a second SQLite library opening the file in
    # this process would drop the gateway's POSIX locks on it when it closes.
    settings_file = tmp_path / "edge.toml"
    settings_file.write_text(f'data_dir = "{ui.gateway.runtime.settings.data_dir}"\n')
    assert load(settings_file, {}).data_dir == ui.gateway.runtime.settings.data_dir

    def edge(*args: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edge", "users", "create", *args, "--password-stdin",
             "--config", str(settings_file)],
            input=password + "\n", capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    made = edge("cli-tech", "--role", "technician", password=PASSWORD)
    assert made.returncode == 0, made.stderr
    assert "Created technician cli-tech" in made.stdout
    client = ui.signed_in("cli-tech")
    assert "cli-tech" in client.get("/").text
    short = edge("x", password="short")
    assert short.returncode == 2 and len(short.stderr.strip().splitlines()) == 1


def test_a_run_of_wrong_passwords_is_stopped_for_a_while(ui):
    ui.user("admin", "admin")
    client = ui.client()
    for _ in range(5):
        token = form_token(client.get("/login").text)
        wrong = client.post(
            "/login",
            data={"form_token": token, "username": "admin", "password": "guess guess guess"},
        )
        assert wrong.status_code == 401
    token = form_token(client.get("/login").text)
    right = client.post(
        "/login", data={"form_token": token, "username": "admin", "password": PASSWORD}
    )
    assert right.status_code == 429 and "Too many failed sign-ins" in right.text
    assert "edge_session" not in right.cookies
    other = ui.client()  # another name is not held back
    ui.user("tech", "technician")
    token = form_token(other.get("/login").text)
    ok = other.post("/login", data={"form_token": token, "username": "tech", "password": PASSWORD})
    assert ok.status_code == 303
