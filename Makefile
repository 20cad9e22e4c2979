# The two commands a user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Debian packages the tests drive as real clients and servers.
DEBS   := curl openssl
# The suite runs a second time on the newest CPython the machine has (pyenv's 3.13 here):
# transports differ between versions in ways that matter to a proxy (see exchange._write).
NEWEST_PYTHON ?= $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3)))

.PHONY: run test suite lint debs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/waylay dump

debs:
	@scripts/ensure-debs $(DEBS)

test: debs
	@$(MAKE) --no-print-directory suite
ifneq ($(NEWEST_PYTHON),)
	@echo "== the suite again on $(NEWEST_PYTHON)"
	@$(MAKE) --no-print-directory suite VENV=.venv-newest PYTHON=$(NEWEST_PYTHON)
else
	@echo "== no CPython 3.13 found: the suite ran on $(PYTHON) only"
endif

# pytest's "no tests collected" (exit 5) is a failure here, never a pass.
suite: $(VENV)/.installed
	@$(BIN)/pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "make: pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

clean:
	rm -rf .venv .venv-newest build *.egg-info src/*.egg-info
