# Vitrine: `make dev` runs everything (embedded PostgreSQL/NATS/Valkey where none run), `make test` tests it.
PYTHON ?= python3
# Where `make uv` installs uv when there is none: a virtual environment of its own, which works
# where pip may not install into the system's Python (PEP 668, Debian 12 and later).
UV_HOME = .vitrine/uv
# uv on PATH, else the one in UV_HOME, else a uv module of $(PYTHON). Expanded when a recipe
# runs, so after `make uv` has run (install depends on it).
UV = $(shell command -v uv 2>/dev/null || { test -x $(UV_HOME)/bin/uv && echo $(UV_HOME)/bin/uv; } || echo $(PYTHON) -m uv)
VENDOR_HLS = services/gateway/web/static/vendor/hls.min.js
DEV_ARGS ?=

.PHONY: uv install dev test lint bench compose-check clean

uv:
	@command -v uv >/dev/null 2>&1 || test -x $(UV_HOME)/bin/uv || $(PYTHON) -m uv --version >/dev/null 2>&1 || { \
		echo "uv is missing: installing it into $(UV_HOME)"; \
		$(PYTHON) -m venv $(UV_HOME) && $(UV_HOME)/bin/pip install --quiet --disable-pip-version-check uv; \
	} || { echo "could not install uv: install python3-venv (apt-get install python3-venv) or uv" >&2; exit 1; }

install: uv
	$(UV) sync --frozen --all-extras
	# hls.js for the viewer page, copied into services/gateway/web/static/vendor/ (never a CDN);
	# skipped when already there for this package-lock.json (no network needed, `make dev` offline).
	@if ! command -v npm >/dev/null 2>&1; then echo "npm missing: the viewer page falls back to native HLS"; \
	elif [ -f $(VENDOR_HLS) ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then :; \
	else npm ci --no-audit --no-fund || echo "npm ci failed: the viewer page falls back to native HLS"; fi

# exec: make is vitrine dev's parent, which stops everything when make is killed, even by SIGKILL
# (not `uv run`, which would outlive make and keep it all running). DEV_ARGS: e.g. --no-demo.
dev: install
	@exec "$$($(UV) run --no-sync python -c 'import sys; print(sys.executable)')" -m vitrine.cli dev $(DEV_ARGS)

# pytest exit code 5 (no tests collected) fails the target like any other failure.
test: install
	$(UV) run pytest -q

lint: install
	$(UV) run ruff check . && $(UV) run ruff format --check . && $(UV) run mypy contracts chassis services vitrine

# Fan-out through the real path, each case side by side with a naive send_text loop; then how fast
# a featured product reaches every viewer, a busy chat fanned out, the analytics consumers, and a
# crowd whose gateway dies (~12 min).
bench: install
	$(UV) run python -m bench.fanout --name saturation --viewers 1000,5000 --rate 50
	$(UV) run python -m bench.fanout --name ten-thousand --viewers 10000 --rate 25 --client-processes 2
	$(UV) run python -m bench.fanout --name quiet-room --viewers 5000 --rate 10 --client-processes 2
	$(UV) run python -m bench.featured --name featured --viewers 1000,5000 --requests 20 --interval 0.5
	$(UV) run python -m bench.chat --name chat --viewers 1000,5000 --rate 50 --posters 200
	$(UV) run python -m bench.analytics --name analytics-consumer
	$(UV) run python -m bench.audience --name audience --viewers 10000 --client-processes 2
	$(UV) run python -m bench.notifications --name notifications --subscribers 10000 --concurrency 50

compose-check:
	@if command -v docker-compose >/dev/null 2>&1; then \
		docker-compose -f docker-compose.yml config -q; \
	else \
		docker compose -f docker-compose.yml config -q; \
	fi

clean:
	rm -rf .vitrine .pytest_cache .mypy_cache .ruff_cache bench/results
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
