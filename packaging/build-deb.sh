#!/usr/bin/env bash
# `make deb [ARCH=arm64]`: dist/edge-gateway_<version>_<arch>.deb from the lock file.
# Online part first (the tools, the wheelhouse checked against the lock's hashes, the
# project's wheel), then dpkg-buildpackage offline on a staged copy of debian/ and packaging/.
# Usage: build-deb.sh [ARCH] [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/env.sh
ARCH=${1:-$(dpkg --print-architecture)}
OUT=$(realpath -m "${2:-dist}")
uv_platform "$ARCH" >/dev/null

version=$("$PYTHON" -c 'import re,sys; print(re.search(r"__version__ = \"([^\"]+)\"", open("edge/__init__.py").read())[1])')
changelog=$(dpkg-parsechangelog -SVersion)
if [ "$version" != "$changelog" ]; then
    echo "build-deb: edge/__init__.py says $version, debian/changelog says $changelog; add a changelog entry (dch -v $version)" >&2
    exit 2
fi
lock=packaging/requirements-$ARCH.txt

ensure_tools
wheels="$BUILD/wheelhouse/$ARCH"
fetched="$wheels/.fetched-for"
if [ "$(cat "$fetched" 2>/dev/null)" != "$(sha256sum <"$lock")" ]; then
    rm -rf "$wheels"
    mkdir -p "$wheels"
    machine=${ARCH/amd64/x86_64}
    machine=${machine/arm64/aarch64}
    platforms=()
    for v in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${v}_$machine"); done
    platforms+=(--platform "manylinux2014_$machine" --platform "linux_$machine")
    "$TOOLS/bin/pip" download --quiet --require-hashes --no-deps --only-binary :all: \
        "${SDIST_ONLY[@]/#/--no-binary=}" \
        --implementation cp --python-version 3.11 --abi cp311 "${platforms[@]}" \
        --dest "$wheels" -r "$lock"
    # The hash-checked sources of SDIST_ONLY, built here; a fixed date keeps the wheel the same.
    for sdist in "$wheels"/*.tar.gz; do
        [ -e "$sdist" ] || continue
        SOURCE_DATE_EPOCH=315532800 "$TOOLS/bin/pip" wheel --quiet --no-deps --use-pep517 \
            --wheel-dir "$wheels" "$sdist"
        rm "$sdist"
    done
    sha256sum <"$lock" >"$fetched"
fi

stage="$BUILD/deb/$ARCH/edge-gateway-$version"
rm -rf "$(dirname "$stage")"
mkdir -p "$stage"
cp -a debian packaging README.md "$stage/"
mkdir "$stage/wheelhouse"
cp -l "$wheels"/*.whl "$stage/wheelhouse/"
# The offline install checks every wheel against the lock; a wheel built here from a source
# whose hash the lock pinned (and the download checked) is pinned by its own hash instead.
for name in "${SDIST_ONLY[@]}"; do
    built=$(find "$wheels" -maxdepth 1 -iname "$name-*.whl")
    [ -n "$built" ] || { echo "build-deb: no wheel was built for $name" >&2; exit 1; }
    digest=$(sha256sum "$built" | cut -d' ' -f1)
    staged="$stage/packaging/requirements-$ARCH.txt"
    awk -v name="$name==" -v digest="$digest" '
        held && /^    --hash=/ { next }
        held { print "    --hash=sha256:" digest; held = 0 }
        index($0, name) == 1 { held = 1 }
        { print }' "$staged" >"$staged.new"
    mv "$staged.new" "$staged"
    grep -q "sha256:$digest" "$staged" || { echo "build-deb: $name is not in the lock" >&2; exit 1; }
done
"$UV" build --quiet --wheel --out-dir "$stage/dist" .
find "$stage/dist" -name uv_cache.json -delete

# Builds are reproducible: every timestamp comes from the changelog entry.
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -STimestamp)
export SOURCE_DATE_EPOCH
cross=()
if [ "$ARCH" != "$(dpkg --print-architecture)" ]; then
    # The build dependencies are the build machine's; dpkg-checkbuilddeps would ask for the
    # target's (python3.11:arm64) when cross-building.
    cross=(--host-arch "$ARCH" -d --build-profiles=cross,nocheck)
    export DEB_BUILD_OPTIONS=nocheck
fi
(cd "$stage" && EDGE_UV="$UV" dpkg-buildpackage -b --no-sign "${cross[@]}" >../build.log 2>&1) || {
    tail -40 "$(dirname "$stage")/build.log" >&2
    exit 1
}
mkdir -p "$OUT"
deb="edge-gateway_${version}_${ARCH}.deb"
mv "$(dirname "$stage")/$deb" "$OUT/"
echo "$OUT/$deb ($(du -h "$OUT/$deb" | cut -f1))"
