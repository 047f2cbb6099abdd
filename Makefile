# The README's quick start: `make demo` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/python -m sessionstore demo

# Runs every backend. PostgreSQL/MariaDB are found at their local defaults or
# through SESSIONSTORE_TEST_POSTGRES_URL / SESSIONSTORE_TEST_MYSQL_URL; without a
# server those tests skip, except under CI=true where they fail.
test: lint
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Part of `make test`: ruff on all the code, mypy --strict on the shipped package.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks migrations
	$(VENV)/bin/mypy

# The benchmarks also measure the OpenAI Agents SDK (the bench extra), installed once.
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(VENV)/bin/pip install --quiet -e '.[all,dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(VENV)/bin/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .sessionstore dist
