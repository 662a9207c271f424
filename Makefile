# Vitrine: `make dev` runs everything (embedded PostgreSQL/NATS/Valkey where none run), `make test` tests it.
PYTHON ?= python3
# uv on PATH, or the one `install` puts into $(PYTHON) (pip may not add it to PATH).
UV = $(shell command -v uv 2>/dev/null || echo $(PYTHON) -m uv)

.PHONY: install dev test lint bench compose-check clean

install:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install uv
	$(UV) sync --frozen --all-extras

dev: install
	$(UV) run vitrine dev

# pytest exit code 5 (no tests collected) fails the target like any other failure.
test: install
	$(UV) run pytest -q

lint:
	$(UV) run ruff check . && $(UV) run ruff format --check . && $(UV) run mypy contracts chassis services vitrine

bench: install
	$(UV) run python -m bench.fanout

compose-check:
	@if command -v docker-compose >/dev/null 2>&1; then \
		docker-compose -f docker-compose.yml config -q; \
	else \
		docker compose -f docker-compose.yml config -q; \
	fi

clean:
	rm -rf .vitrine .pytest_cache .mypy_cache .ruff_cache bench/results
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
