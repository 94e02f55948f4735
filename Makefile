# One-command set-up and tasks. Every target creates .venv and installs the project when needed;
# the install is skipped while pyproject.toml and constraints.txt are unchanged (content hash).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_HASH := $(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
PYTEST_WORKERS ?= 2

.PHONY: setup system-deps test test-fast render bench bench-wheels demo screenshots lint clean

setup: $(STAMP) system-deps

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

# Debian packages: libusb-1.0-0 (open3d imports it) and chromium + chromium-driver (the demo's browser test,
# which skips with the reason where they are absent). Installed when missing and we are root.
system-deps:
	@missing=""; \
	/sbin/ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0' || missing="$$missing libusb-1.0-0"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	test -x /usr/bin/chromedriver || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1 || \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } || \
	    echo "warning: could not install$$missing (open3d needs libusb-1.0-0; the browser test skips)" >&2; \
	  else \
	    echo "warning: missing Debian packages$$missing and we are not root: apt-get install$$missing" >&2; \
	  fi; \
	fi

test: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal -q

test-fast: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal -q -x -m "not slow"

render: setup
	$(PY) -m nvs.render nvs/assets/coffee.jpg --out renders
	@echo "outputs: renders/coffee/ (views/, depth/, orbit.gif, mesh.ply, nerfstudio/, summary.json)"

demo: setup
	$(PY) -m demos.app

# The README's screenshots of both demo tabs, taken in headless Chromium.
screenshots: setup
	$(PY) -m demos.browser --out docs/images

bench: setup
	$(PY) -m kernels.bench --device cpu

# Wheels the GPU machine lacks for the peers benchmark (fla-core is pure Python): carry .bench-wheels there
bench-wheels:
	$(PYTHON) -m pip download --no-deps -q -d .bench-wheels fla-core einops

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
