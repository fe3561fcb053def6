#!/usr/bin/env bash
# `make lock`: hash-locked runtime requirements for each architecture the package is built for,
# packaging/requirements-<arch>.txt, resolved from pyproject.toml's dependencies. Wheels only
# (the build never compiles), but for the pure-Python SDIST_ONLY packages (env.sh), for
# CPython 3.11 on glibc 2.36 (bookworm). Rerun it after
# changing a dependency; commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
source packaging/env.sh
ensure_tools
for arch in amd64 arm64; do
    "$UV" pip compile pyproject.toml --quiet --generate-hashes --only-binary :all: \
        "${SDIST_ONLY[@]/#/--no-binary=}" \
        --python-version 3.11 --python-platform "$(uv_platform "$arch")" \
        --custom-compile-command "make lock" \
        --output-file "packaging/requirements-$arch.txt"
    echo "packaging/requirements-$arch.txt: $(grep -c '^[a-z0-9]' "packaging/requirements-$arch.txt") packages"
done
