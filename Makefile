# The first two commands on a fresh machine: `make demo`, then `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-slow bench lint format clean
.PHONY: deb lock deb-test deb-boot-test

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
		echo "make: $(PYTHON) lacks venv; install it with: sudo apt-get install python3-venv" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edge demo

# The slow suite (browser, SIGKILL and schemathesis runs) is its own step of CI: `make test-slow`.
test: lint test-fast

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

bench: $(STAMP)
	$(BIN)/python -m tests.bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache build dist

# The Debian package (README: Installing on a gateway). ARCH=arm64 cross-builds on amd64.
ARCH ?= $(shell dpkg --print-architecture)

deb:
	packaging/build-deb.sh $(ARCH)

# Re-resolve packaging/requirements-<arch>.txt after a change to the dependencies.
lock:
	packaging/lock.sh

# Builds three versions, installs, upgrades, downgrades and purges them here (root; CI runs it).
deb-test:
	packaging/install-test.sh

# The unit started by a real systemd in a bookworm container (root; network for the tree).
# DEB=path tests that package instead of building one.
deb-boot-test:
	packaging/boot-test.sh $(DEB)
