#!/usr/bin/env bash
# `make deb-test`: the package installed on this machine, the way a gateway gets it.
# Builds version N (the tree's), N+1 (a copy with the version bumped and one migration added)
# and N+2 (a copy whose migration fails); installs N, checks the user, modes and conffile,
# runs /usr/bin/edge as the service user with the packaged config, writes data through the
# API, reinstalls, upgrades to N+1 (data intact, migrated), to N+2 (refused, file untouched),
# back to N+1, down to N (a newer database is refused); lintian; purge; nothing left.
# Needs root. Purges the package (and drops the user it created) on every exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/env.sh
[ "$(id -u)" = 0 ] || { echo "install-test: needs root (dpkg -i)" >&2; exit 2; }
if dpkg-query -W -f='${db:Status-Status}' edge-gateway 2>/dev/null | grep -qv not-installed; then
    echo "install-test: edge-gateway is already installed here; the test would purge it" >&2
    exit 2
fi

ARCH=$(dpkg --print-architecture)
CONF=/etc/edge-gateway/edge.toml
STATE=/var/lib/edge-gateway
DB=$STATE/edge.db
VPY=/usr/lib/edge-gateway/bin/python
work=$(mktemp -d /tmp/edge-deb-test.XXXXXX)
getent passwd edge-gateway >/dev/null && had_user=yes || had_user=no
server=

step() { echo "== $*"; }
fail() { echo "install-test: FAILED: $*" >&2; exit 1; }
# As the unit runs it: the service user and its groups, nothing of this shell's environment.
as_service() {
    setpriv --reuid edge-gateway --regid edge-gateway --init-groups -- \
        env -i PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"
}

leftovers() {
    local path
    for path in /usr/lib/edge-gateway /etc/edge-gateway "$STATE" /usr/bin/edge \
        /lib/systemd/system/edge-gateway.service /usr/lib/sysusers.d/edge-gateway.conf \
        /usr/lib/tmpfiles.d/edge-gateway.conf /usr/share/dbus-1/system.d/edge-gateway.conf \
        /usr/share/doc/edge-gateway /etc/systemd/system/multi-user.target.wants/edge-gateway.service; do
        if [ -e "$path" ] || [ -L "$path" ]; then echo "$path"; fi
    done
    dpkg-statoverride --list "$CONF" || true
    if getent passwd edge-gateway >/dev/null && pgrep -u edge-gateway >/dev/null; then
        echo "processes of edge-gateway: $(pgrep -u edge-gateway | tr '\n' ' ')"
    fi
    if dpkg-query -W -f='${db:Status-Status}\n' edge-gateway 2>/dev/null | grep -qv not-installed; then
        echo "package edge-gateway"
    fi
}

cleanup() {
    local rc=$?
    if [ -n "$server" ]; then kill -KILL "$server" 2>/dev/null || true; fi
    dpkg --purge edge-gateway >/dev/null 2>&1 || true
    if [ "$had_user" = no ]; then
        userdel edge-gateway 2>/dev/null || true
        groupdel edge-gateway 2>/dev/null || true
    fi
    rm -rf "$work"
    local left
    left=$(leftovers)
    if [ -n "$left" ]; then
        echo "install-test: left on the machine after purge:" >&2
        echo "$left" >&2
        rc=1
    fi
    if [ $rc = 0 ]; then echo "install-test: passed"; else echo "install-test: FAILED" >&2; fi
    exit $rc
}
trap cleanup EXIT

version=$("$PYTHON" -c 'import re; print(re.search(r"__version__ = \"([^\"]+)\"", open("edge/__init__.py").read())[1])')
bump() { "$PYTHON" -c 'import sys; p = sys.argv[1].split("."); p[-1] = str(int(p[-1]) + 1); print(".".join(p))' "$1"; }
v1=$(bump "$version")
v2=$(bump "$v1")

# A copy of the tree at the next version: the version's one place, a changelog entry, and a
# migration appended to the store's list ($3: its body).
next_version() {
    local from=$1 to=$2 dir=$3 name=$4 body=$5
    mkdir -p "$dir"
    tar -C "$from" --exclude=./.venv --exclude=./build --exclude=./dist --exclude=./.git -cf - . |
        tar -C "$dir" -xf -
    sed -i "s/^__version__ = .*/__version__ = \"$to\"/" "$dir/edge/__init__.py"
    {
        printf 'edge-gateway (%s) unstable; urgency=medium\n\n  * Upgrade test: migration %s.\n\n' "$to" "$name"
        printf ' -- Edge Gateway Maintainers <edge-gateway@example.com>  %s\n\n' "$(date -R)"
        cat "$from/debian/changelog"
    } >"$dir/debian/changelog.new"
    mv "$dir/debian/changelog.new" "$dir/debian/changelog"
    printf '\n\ndef _%s(db):\n    %s\n\n\nMIGRATIONS = (*MIGRATIONS, ("%s", _%s))\n' \
        "${name#*_}" "$body" "$name" "${name#*_}" >>"$dir/edge/store/_migrations.py"
}

step "build $version, $v1 (adds a migration), $v2 (its migration fails)"
export EDGE_BUILD_DIR=$BUILD
packaging/build-deb.sh "$ARCH" | tail -1
next_version . "$v1" "$work/next" 9000_upgrade_probe \
    'db["upgrade_probe"].insert({"id": 1, "note": "migrated"}, pk="id")'
"$work/next/packaging/build-deb.sh" "$ARCH" "$work/debs" | tail -1
next_version "$work/next" "$v2" "$work/broken" 9001_broken_probe \
    'raise RuntimeError("the probe migration fails")'
"$work/broken/packaging/build-deb.sh" "$ARCH" "$work/debs" | tail -1
deb0=$PWD/dist/edge-gateway_${version}_$ARCH.deb
deb1=$work/debs/edge-gateway_${v1}_$ARCH.deb
deb2=$work/debs/edge-gateway_${v2}_$ARCH.deb

step "lintian"
lintian --fail-on error,warning "$deb0" || fail "lintian reports errors or warnings"

step "dpkg -i $version"
dpkg -i "$deb0" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i"; }
sed -n '/^edge-gateway is installed/,/^Settings:/p' "$work/install.log" | sed 's/^/   /'
grep -q "the UI and API are at http://" "$work/install.log" || fail "first install prints no URL"
grep -q "edge users create --role admin" "$work/install.log" ||
    fail "first install does not say how to make the admin"

step "user, groups, modes, conffile"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd edge-gateway) || fail "no user edge-gateway"
[ "$uid" -lt 1000 ] || fail "edge-gateway is not a system user (uid $uid)"
[ "$home" = "$STATE" ] || fail "home is $home"
case "$shell" in */nologin | */false) ;; *) fail "login shell $shell" ;; esac
id -nG edge-gateway | tr ' ' '\n' | grep -qx dialout || fail "edge-gateway is not in dialout"
[ "$(stat -c '%a %U %G' "$CONF")" = "640 root edge-gateway" ] || fail "$CONF: $(stat -c '%a %U %G' "$CONF")"
dpkg-query -W -f='${Conffiles}\n' edge-gateway | grep -q " $CONF " || fail "$CONF is not a conffile"
[ "$(stat -c '%a %U %G' "$STATE")" = "750 edge-gateway edge-gateway" ] || fail "$STATE: $(stat -c '%a %U %G' "$STATE")"
[ "$(readlink -f /usr/bin/edge)" = /usr/lib/edge-gateway/bin/edge ] || fail "/usr/bin/edge"
[ "$(readlink -f "$VPY")" = /usr/bin/python3.11 ] || fail "the venv's python is not Debian's python3.11"
[ "$(env -i /usr/bin/edge version)" = "edge-gateway $version" ] || fail "edge version"
if grep -rlF -e "$BUILD" -e "$PWD" /usr/lib/edge-gateway >/dev/null; then
    fail "build paths in the installed venv: $(grep -rlF -e "$BUILD" -e "$PWD" /usr/lib/edge-gateway | head -3)"
fi

step "systemd-analyze verify and security"
systemd-analyze verify /lib/systemd/system/edge-gateway.service
systemd-analyze security --offline=yes --threshold=20 /lib/systemd/system/edge-gateway.service \
    | tail -1
grep -q "^TimeoutStopSec=30$" /lib/systemd/system/edge-gateway.service || fail "TimeoutStopSec"

port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port

start_gateway() {
    # Not through as_service: $! must be the gateway itself, not a subshell, for the SIGTERM.
    setpriv --reuid edge-gateway --regid edge-gateway --init-groups -- env -i PATH=/usr/bin:/bin \
        LANG=C.UTF-8 EDGE_HTTP_HOST=127.0.0.1 EDGE_HTTP_PORT="$port" \
        /usr/bin/edge run --config "$CONF" 2>>"$work/gateway.log" &
    server=$!
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "$base/healthz" 2>/dev/null && return 0
        kill -0 "$server" 2>/dev/null || { cat "$work/gateway.log"; fail "the gateway exited"; }
        sleep 0.2
    done
    cat "$work/gateway.log"
    fail "no answer on $base/healthz"
}

stop_gateway() {
    local t0 rc=0
    t0=$(date +%s.%N)
    kill -TERM "$server"
    wait "$server" || rc=$?
    server=
    [ $rc = 0 ] || { cat "$work/gateway.log"; fail "the gateway stopped with exit code $rc"; }
    "$PYTHON" -c 'import sys; sys.exit(float(sys.argv[2]) - float(sys.argv[1]) > 10)' \
        "$t0" "$(date +%s.%N)" || fail "the gateway took longer than stop_timeout_s to stop"
    tail -1 "$work/gateway.log" | grep -q "stopped; every accepted reading is committed" ||
        fail "the gateway did not say its writes were flushed: $(tail -1 "$work/gateway.log")"
}

readings_of() {
    curl -fsS -H "Authorization: Bearer $key" \
        "$base/v1/telemetry?device_id=$device&metric=power_kw&from=2026-05-24T10:00:00Z&to=2026-05-24T11:00:00Z" |
        "$PYTHON" -c 'import json, sys; print(" ".join(str(r["value"]) for r in json.load(sys.stdin)["data"]))'
}

step "run as edge-gateway with $CONF; /healthz, the UI, data through the API"
key=$(as_service /usr/bin/edge keys create --name deb-test \
    --scopes devices.write,devices.read,telemetry.write,telemetry.read | tail -1)
start_gateway
curl -fsS "$base/healthz" | grep -q . || fail "/healthz"
ui=$(curl -sS -L -o "$work/ui.html" -w '%{http_code}' "$base/")
# A new gateway sends / to its first-run page, which asks for the first admin.
[ "$ui" = 200 ] || fail "the UI root answers $ui"
grep -qi "<form" "$work/ui.html" || fail "the UI root serves no first-run or login form"
device=$(curl -fsS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"name": "Upgrade meter", "type": "http"}' "$base/v1/devices" |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["data"]["id"])')
curl -fsS -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"readings": [
    {"device_id": "'"$device"'", "metric": "power_kw", "ts": "2026-05-24T10:00:00Z", "value": 12.5},
    {"device_id": "'"$device"'", "metric": "power_kw", "ts": "2026-05-24T10:00:05Z", "value": 13.5}]}' \
    "$base/v1/telemetry/ingest"
[ "$(readings_of)" = "12.5 13.5" ] || fail "readings not read back: $(readings_of)"
stop_gateway
[ "$(stat -c %U "$DB")" = edge-gateway ] || fail "$DB is owned by $(stat -c %U "$DB")"

step "dpkg -i $version again, over itself, with a local change to the conffile"
echo "# changed on this gateway" >>"$CONF"
dpkg -i "$deb0" >"$work/reinstall.log" 2>&1 || { cat "$work/reinstall.log"; fail "reinstall"; }
grep -qx "# changed on this gateway" "$CONF" || fail "the local change to $CONF was lost"
[ "$(stat -c '%a %U %G' "$CONF")" = "640 root edge-gateway" ] || fail "$CONF mode after reinstall"
grep -q "the UI and API are at" "$work/reinstall.log" && fail "reinstall prints the first-install message"

step "upgrade to $v1: data intact, migrated"
dpkg -i "$deb1" >"$work/upgrade.log" 2>&1 || { cat "$work/upgrade.log"; fail "upgrade"; }
[ "$(env -i /usr/bin/edge version)" = "edge-gateway $v1" ] || fail "edge version after upgrade"
[ "$(as_service /usr/bin/edge db migrate)" = "$DB: up to date" ] || fail "postinst did not migrate"
note=$(as_service "$VPY" -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT note FROM upgrade_probe").fetchone()[0])' "$DB")
[ "$note" = migrated ] || fail "the new migration's data is missing"
start_gateway
[ "$(readings_of)" = "12.5 13.5" ] || fail "readings lost in the upgrade: $(readings_of)"
stop_gateway

step "upgrade to $v2, whose migration fails: the file is untouched, the gateway refuses it"
before=$(sha256sum "$DB")
dpkg -i "$deb2" >"$work/broken.log" 2>&1 || { cat "$work/broken.log"; fail "dpkg -i of $v2 failed"; }
grep -q "migration 9001_broken_probe failed" "$work/broken.log" || { cat "$work/broken.log"; fail "postinst does not say the migration failed"; }
[ "$(sha256sum "$DB")" = "$before" ] || fail "the failed migration changed $DB"
rc=0
as_service /usr/bin/edge run --config "$CONF" >"$work/refused.out" 2>"$work/refused.err" || rc=$?
[ $rc = 1 ] || fail "edge run with a failing migration exits $rc"
[ "$(wc -l <"$work/refused.err")" = 1 ] || { cat "$work/refused.err"; fail "the refusal is not one line"; }
grep -q "migration 9001_broken_probe failed (RuntimeError: the probe migration fails)" "$work/refused.err" ||
    fail "unclear refusal: $(cat "$work/refused.err")"
echo "   $(cat "$work/refused.err")"
[ "$(sha256sum "$DB")" = "$before" ] || fail "the refused start changed $DB"

step "back to $v1: the database works as before"
dpkg -i "$deb1" >"$work/back.log" 2>&1 || { cat "$work/back.log"; fail "reinstall $v1"; }
start_gateway
[ "$(readings_of)" = "12.5 13.5" ] || fail "readings after going back: $(readings_of)"
stop_gateway

step "down to $version: a database from a newer version is refused, not overwritten"
before=$(sha256sum "$DB")
dpkg -i "$deb0" >"$work/down.log" 2>&1 || { cat "$work/down.log"; fail "downgrade"; }
grep -q "written by a newer gateway" "$work/down.log" || { cat "$work/down.log"; fail "postinst accepts a newer database"; }
rc=0
as_service /usr/bin/edge run --config "$CONF" 2>"$work/newer.err" || rc=$?
[ $rc = 1 ] && grep -q "migration 9000_upgrade_probe is unknown" "$work/newer.err" ||
    fail "a newer database is not refused: $(cat "$work/newer.err")"
[ "$(sha256sum "$DB")" = "$before" ] || fail "the older version changed $DB"

step "dpkg -r keeps the database and the config; dpkg --purge deletes them"
dpkg -r edge-gateway >"$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "remove"; }
[ -s "$DB" ] && [ -f "$CONF" ] || fail "remove deleted the database or the config"
[ ! -e /usr/lib/edge-gateway ] && [ ! -e /usr/bin/edge ] || fail "remove left the program"
dpkg --purge edge-gateway >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge"; }
left=$(leftovers)
[ -z "$left" ] || fail "purge left: $left"
