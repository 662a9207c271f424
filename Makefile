# Vitrine: `make dev` runs everything (embedded PostgreSQL/NATS/Valkey where none run), `make test` tests it.
PYTHON ?= python3
# uv on PATH, or the one `install` puts into $(PYTHON) (pip may not add it to PATH).
UV = $(shell command -v uv 2>/dev/null || echo $(PYTHON) -m uv)

.PHONY: install dev test lint bench compose-check clean

install:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install uv
	$(UV) sync --frozen --all-extras
	# hls.js for the viewer page, copied into services/gateway/web/static/vendor/ (never a CDN)
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund; else echo "npm missing: the viewer page falls back to native HLS"; fi

dev: install
	$(UV) run vitrine dev

# pytest exit code 5 (no tests collected) fails the target like any other failure.
test: install
	$(UV) run pytest -q

lint: install
	$(UV) run ruff check . && $(UV) run ruff format --check . && $(UV) run mypy contracts chassis services vitrine

# Fan-out through the real path, each case side by side with a naive send_text loop; then how fast
# a featured product reaches every viewer, and a busy chat fanned out (~6 min).
bench: install
	$(UV) run python -m bench.fanout --name saturation --viewers 1000,5000 --rate 50
	$(UV) run python -m bench.fanout --name ten-thousand --viewers 10000 --rate 25 --client-processes 2
	$(UV) run python -m bench.fanout --name quiet-room --viewers 5000 --rate 10 --client-processes 2
	$(UV) run python -m bench.featured --name featured --viewers 1000,5000 --requests 20 --interval 0.5
	$(UV) run python -m bench.chat --name chat --viewers 1000,5000 --rate 50 --posters 200
	$(UV) run python -m bench.analytics --name analytics-consumer

compose-check:
	@if command -v docker-compose >/dev/null 2>&1; then \
		docker-compose -f docker-compose.yml config -q; \
	else \
		docker compose -f docker-compose.yml config -q; \
	fi

clean:
	rm -rf .vitrine .pytest_cache .mypy_cache .ruff_cache bench/results
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
