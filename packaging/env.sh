# Sourced by the packaging scripts: a build that sees nothing of the host's Python set-up.
# The host's pip configuration (/etc/xdg/pip, /etc/pip.conf, PIP_* such as PIP_FIND_LINKS or a
# constraint file), uv's, and pyenv's shims on PATH would otherwise leak into the lock, the
# wheelhouse and the venv; the package is built with Debian's own interpreter.
for var in $(compgen -e); do
    case "$var" in PIP_* | UV_* | PYENV* | VIRTUAL_ENV | PYTHONPATH | PYTHONHOME | PYTHONUSERBASE) unset "$var" ;; esac
done
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONNOUSERSITE=1
export UV_NO_CONFIG=1 UV_NATIVE_TLS=1 UV_PYTHON_DOWNLOADS=never
[ -r /etc/ssl/certs/ca-certificates.crt ] && export PIP_CERT=/etc/ssl/certs/ca-certificates.crt

PYTHON=/usr/bin/python3.11
# Tools of the build itself (not of the product) and the wheelhouse, kept between builds;
# EDGE_BUILD_DIR lets a copy of the tree (the upgrade test's next version) share them.
BUILD=$(realpath -m "${EDGE_BUILD_DIR:-$PWD/build}")
UV_VERSION=0.13.8
# Pure-Python dependencies published only as source: locked by their sdist's hash, built
# into a wheel (py3-none-any, the same for every architecture) in the online part of a build.
SDIST_ONLY=(pyric)
TOOLS="$BUILD/tools"
UV="$TOOLS/bin/uv"

ensure_tools() {
    if ! "$UV" --version 2>/dev/null | grep -qF "uv $UV_VERSION"; then
        rm -rf "$TOOLS"
        "$PYTHON" -m venv "$TOOLS"
        "$TOOLS/bin/pip" install --quiet "uv==$UV_VERSION"
    fi
}

# Debian architecture -> uv's target platform and pip's wheel platform tags (bookworm: glibc 2.36).
uv_platform() {
    case "$1" in
        amd64) echo x86_64-manylinux_2_36 ;;
        arm64) echo aarch64-manylinux_2_36 ;;
        *) echo "unsupported architecture $1 (amd64, arm64)" >&2; return 2 ;;
    esac
}
