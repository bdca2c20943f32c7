# Two commands do everything on a fresh machine:
#   make demo   create .venv, install Insyn (runtime dependencies only), run the demo audit
#   make test   the same environment with the dev extra, then the whole test suite
# scripts/setup-env.sh installs with uv from PyPI (falling back to pip) and shows its progress.
PYTHON ?=
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test venv venv-dev bench clean

venv:
	PYTHON=$(PYTHON) sh scripts/setup-env.sh run

venv-dev:
	PYTHON=$(PYTHON) sh scripts/setup-env.sh dev

demo: venv
	$(BIN)/insyn demo

test: venv-dev
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -q --durations=25 $(PYTEST_ARGS)

bench: venv-dev
	for f in benchmarks/*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .venv-uv build dist .pytest_cache
