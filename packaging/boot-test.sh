#!/usr/bin/env bash
# `make deb-boot-test`: the unit started by a real systemd. A bookworm tree (mmdebstrap) with
# the package installed boots under systemd-nspawn; a one-shot unit in it starts
# edge-gateway.service, waits for /healthz, reads the live `systemd-analyze security` score,
# stops the service (it must stop cleanly within TimeoutStopSec) and powers the container off.
# Needs root and Debian's apt; the tree is cached in build/boot-tree.tar between runs.
# Usage: boot-test.sh [DEB]
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/env.sh
[ "$(id -u)" = 0 ] || { echo "boot-test: needs root" >&2; exit 2; }
ARCH=$(dpkg --print-architecture)
deb=${1:-}
if [ -z "$deb" ]; then
    deb=$(packaging/build-deb.sh "$ARCH" | tail -1 | cut -d' ' -f1)
fi
# What a gateway's base system has that the package depends on (libatomic1: the libusb that
# Bumble bundles for USB dongles); the cached tree is named after the list.
base=systemd,systemd-sysv,dbus,curl,python3.11,libatomic1
tarball=$BUILD/boot-tree-$(echo "$base" | sha256sum | cut -c1-12).tar
tree=$(mktemp -d /tmp/edge-boot.XXXXXX)
trap 'rm -rf "$tree"' EXIT

if [ ! -s "$tarball" ]; then
    mmdebstrap --quiet --format=tar --variant=apt --include="$base" bookworm "$tarball.new"
    mv "$tarball.new" "$tarball"
fi
tar -C "$tree" -xf "$tarball"
cp "$deb" "$tree/tmp/edge-gateway.deb"
chroot "$tree" dpkg -i /tmp/edge-gateway.deb >"$tree/tmp/install.log" 2>&1 ||
    { cat "$tree/tmp/install.log"; exit 1; }

cat >"$tree/usr/local/sbin/edge-boot-check" <<'EOF'
#!/bin/sh
# Runs once the container has booted; writes /result and powers off.
exec >/result 2>&1
systemctl start edge-gateway.service
ok=no
for _ in $(seq 60); do
    if curl -fsS http://127.0.0.1:8080/healthz; then ok=yes; break; fi
    sleep 0.5
done
echo
systemctl is-active edge-gateway.service
systemctl show -p User,MainPID,NRestarts edge-gateway.service
systemd-analyze security edge-gateway.service | tail -1
start=$(date +%s)
systemctl stop edge-gateway.service
echo "stopped in $(( $(date +%s) - start )) s"
systemctl show -p Result,ExecMainStatus edge-gateway.service
journalctl -u edge-gateway.service --no-pager | tail -20
echo "healthz: $ok"
# A database from a newer version: refused at every start, one line in the journal, and
# systemd gives up after StartLimitBurst instead of restarting forever.
runuser -u edge-gateway -- /usr/lib/edge-gateway/bin/python -c 'import sqlite3; c = sqlite3.connect("/var/lib/edge-gateway/edge.db"); c.execute("INSERT INTO _migrations VALUES (?, 0)", ("9999_from_a_newer_version",)); c.commit()'
systemctl start edge-gateway.service || true
for _ in $(seq 90); do
    [ "$(systemctl show -p ActiveState --value edge-gateway.service)" = failed ] && break
    sleep 0.5
done
systemctl show -p ActiveState,Result,NRestarts edge-gateway.service | sed 's/^/refused: /'
journalctl -u edge-gateway.service --no-pager -o cat | tail -8
journalctl -u edge-gateway.service --no-pager -o cat | grep -c "^edge: .*9999_from_a_newer_version is unknown" | sed 's/^/refusals: /'
systemctl poweroff
EOF
chmod +x "$tree/usr/local/sbin/edge-boot-check"
cat >"$tree/etc/systemd/system/edge-boot-check.service" <<'EOF'
[Unit]
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/edge-boot-check
[Install]
WantedBy=multi-user.target
EOF
ln -s /etc/systemd/system/edge-boot-check.service \
    "$tree/etc/systemd/system/multi-user.target.wants/edge-boot-check.service"
# The package enables its unit; this test starts it itself, after boot.
rm -f "$tree/etc/systemd/system/multi-user.target.wants/edge-gateway.service"

timeout 180 systemd-nspawn --quiet --boot --directory "$tree" --machine edge-boot-test --keep-unit --private-network \
    --register=no --console=pipe </dev/null >"$BUILD/boot-console.log" 2>&1 || true
cat "$tree/result" 2>/dev/null || { tail -40 "$BUILD/boot-console.log"; echo "boot-test: no result" >&2; exit 1; }
grep -q "^healthz: yes" "$tree/result" || { echo "boot-test: FAILED: no /healthz" >&2; exit 1; }
grep -qx "Result=success" "$tree/result" || { echo "boot-test: FAILED: unclean stop" >&2; exit 1; }
grep -qx "ExecMainStatus=0" "$tree/result" || { echo "boot-test: FAILED: exit status" >&2; exit 1; }
grep -qx "refused: ActiveState=failed" "$tree/result" &&
    grep -q "Start request repeated too quickly" "$tree/result" ||
    { echo "boot-test: FAILED: a refused database does not stop the restarts" >&2; exit 1; }
grep -qx "refusals: 5" "$tree/result" ||
    { echo "boot-test: FAILED: not five one-line refusals in the journal" >&2; exit 1; }
echo "boot-test: passed"
