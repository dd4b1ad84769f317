# Quick start:  make demo   (virtualenv, wheel, example workflow)
#               make test   (Rust and Python tests)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The wheel and the Rust tests use the same features and profile, so the (large)
# flyteidl2 crate is compiled once and shared.
CARGO_FEATURES := --no-default-features --features extension-module
CARGO_PROFILE := --release
export PYO3_PYTHON := $(abspath $(PY))
# What maturin sets when it builds the wheel. cargo test gets the same, or pyo3's build
# configuration (and everything above it, flyteidl2 included) would be rebuilt between the two.
export PYO3_BUILD_EXTENSION_MODULE := 1
export PYTHON_SYS_EXECUTABLE := $(abspath $(PY))
export PYO3_ENVIRONMENT_SIGNATURE = $(shell test -x $(PY) && $(PY) -c 'import platform, struct, sys; \
	print("%s-%d.%d-%dbit" % (platform.python_implementation().lower(), *sys.version_info[:2], struct.calcsize("P") * 8))')
STAMP := $(VENV)/.deps-stamp

.PHONY: demo test venv wheel install test-rust test-python test-images test-tools image wheelhouse bench chaos lint fmt clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@# What the SDK needs and what its tests need, as pyproject.toml lists them (one list).
	$(PY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["dev"]))' > $(VENV)/requirements.txt
	$(PIP) install --quiet "maturin>=1.7,<2.0" -r $(VENV)/requirements.txt
	touch $(STAMP)

venv: $(STAMP)

wheel: $(STAMP)
	rm -f dist/*.whl
	$(VENV)/bin/maturin build $(CARGO_PROFILE) --out dist --interpreter $(PY)

install: wheel
	$(PIP) install --quiet --force-reinstall --no-deps dist/*.whl
	$(PIP) install --quiet dist/*.whl

# The example on the embedded backend (started in the background, stopped afterwards):
# every task action is its own process.
demo: install
	$(VENV)/bin/flyte run --local examples/hello.py main --numbers '[1,2,3]'
	$(VENV)/bin/flyte run -f examples/hello.py main --numbers '[1,2,3]'; status=$$?; \
		$(VENV)/bin/flyte stop local; exit $$status

# cargo test also builds the flyte-submit binary (the controller's integration tests need it),
# which tests/integration/test_rust_binary.py runs.
test-rust: $(STAMP)
	cargo test $(CARGO_PROFILE) $(CARGO_FEATURES) --workspace

# Debian packages the tests use, as package:command: buildah (builds images without a daemon),
# docker-registry (a real OCI registry on 127.0.0.1), mmdebstrap (a Debian base image from
# Debian's packages), chromium (the browser of the PKCE sign-in test), qemu-user-static (runs
# arm64 programs here through binfmt_misc: the RUN steps of an arm64 image).
TEST_TOOLS := buildah:buildah docker-registry:docker-registry mmdebstrap:mmdebstrap chromium:chromium \
	qemu-user-static:qemu-aarch64-static
test-tools:
	@missing=$$(for t in $(TEST_TOOLS); do command -v $${t#*:} >/dev/null || echo $${t%%:*}; done); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	@# qemu-user-static ships its binfmt_misc handlers, but nothing registers them in a container
	@# without systemd: mount binfmt_misc if needed and register the arm64 one (root only).
	@if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then \
		mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; \
		cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register; \
		echo "registered qemu-aarch64 with binfmt_misc"; \
	fi

# Faults at random points of real runs (kills, a full or read-only disk) and malformed requests;
# prints a table of figures and fails if an invariant breaks. SEED=N replays a suite.
# `make test` runs a bounded form (tests/chaos/test_chaos.py).
chaos: install test-tools
	$(PY) tests/chaos/suite.py --trials 20 --requests 1000 $(if $(SEED),--seed $(SEED))

test-python: install test-tools
	$(VENV)/bin/pytest -q tests

# The default task image (docker/default_image.py: Flyte's Debian base with this SDK), built with
# `flyte build` and pushed to $(REGISTRY), for $(PLATFORMS) (default: this machine's). Platforms
# other than this machine's take this SDK's wheels from $(FLYTE_WHEELHOUSE) (`make wheelhouse`)
# and run their RUN steps under qemu-user-static.
REGISTRY ?= localhost:5000
HOST_PLATFORM := linux/$(shell uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')
PLATFORMS ?= $(HOST_PLATFORM)
FLYTE_WHEELHOUSE ?= $(abspath dist/wheelhouse)
image: install
	@command -v buildah >/dev/null || command -v docker >/dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q buildah)
	@if [ "$(PLATFORMS)" != "$(HOST_PLATFORM)" ] && ! command -v qemu-aarch64-static >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static; fi
	REGISTRY=$(REGISTRY) PLATFORMS=$(PLATFORMS) FLYTE_WHEELHOUSE=$(FLYTE_WHEELHOUSE) \
		$(VENV)/bin/flyte build docker/default_image.py

# This SDK's manylinux_2_28 wheels for linux/amd64 and linux/arm64 (docker/wheel.Dockerfile:
# cross-built with Debian's Rust and zig), into $(FLYTE_WHEELHOUSE).
wheelhouse:
	@command -v buildah >/dev/null || command -v docker >/dev/null || \
		(apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q buildah)
	mkdir -p $(FLYTE_WHEELHOUSE)
	if docker info >/dev/null 2>&1; then \
		docker buildx build -f docker/wheel.Dockerfile -o $(FLYTE_WHEELHOUSE) . ; \
	else \
		BUILDAH_ISOLATION=$${BUILDAH_ISOLATION:-chroot} buildah build --layers -f docker/wheel.Dockerfile \
			-o type=local,dest=$(FLYTE_WHEELHOUSE) . ; \
	fi

# docker/Dockerfile is the default image's definition rendered; regenerate it after changing it.
docker/Dockerfile: docker/default_image.py python/flyte/_image.py python/flyte/_imagebuild/_dockerfile.py
	REGISTRY= PLATFORMS=linux/amd64 $(VENV)/bin/flyte build --dry-run docker/default_image.py > $@

# Build, push, pull and run task images against a registry on 127.0.0.1.
test-images: install test-tools
	$(VENV)/bin/pytest -q tests/images

# Style and types are part of the test: CI runs `make test` and nothing else.
test: lint test-rust test-python

bench: install
	$(PY) benchmarks/local_mode/run.py

lint: $(STAMP)
	$(VENV)/bin/ruff check python tests benchmarks examples docker
	$(VENV)/bin/ruff format --check python tests benchmarks examples docker
	$(VENV)/bin/mypy python/flyte
	cargo fmt --all -- --check
	cargo clippy $(CARGO_PROFILE) $(CARGO_FEATURES) --workspace --all-targets -- -D warnings

fmt: $(STAMP)
	$(VENV)/bin/ruff format python tests benchmarks examples docker
	cargo fmt --all

clean:
	rm -rf dist target $(VENV)
