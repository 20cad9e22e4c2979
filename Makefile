# The two commands a user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Debian packages the tests drive as real clients and servers (nginx and wrk: the benchmark;
# chromium and libnss3-tools' certutil: the browser test; iproute2 and iptables: the
# transparent-mode tests, in network namespaces).
DEBS   := curl openssl nginx wrk chromium libnss3-tools iproute2 iptables
# The suite runs a second time on the newest CPython the machine has (pyenv's 3.13 here):
# transports differ between versions in ways that matter to a proxy (see exchange._write).
NEWEST_PYTHON ?= $(lastword $(sort $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3)))

.PHONY: run test suite lint debs bench bench-deps fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/waylay web

debs:
	@scripts/ensure-debs $(DEBS)

# The benchmark's smoke run (tests/bench), the soak (tests/e2e/test_soak.py) and the web
# page in Chromium (tests/e2e/test_web_browser.py) run in the first suite only: they measure
# the proxy's speed and resources over many connections, or the page's JavaScript, not the
# suite's Python, and would add two minutes to the second (CI's budget is 25).
test: debs bench-deps
	@$(MAKE) --no-print-directory suite
ifneq ($(NEWEST_PYTHON),)
	@echo "== the suite again on $(NEWEST_PYTHON)"
	@$(MAKE) --no-print-directory suite VENV=.venv-newest PYTHON=$(NEWEST_PYTHON) \
		PYTEST_ARGS="--ignore=tests/bench --ignore=tests/e2e/test_soak.py \
		--ignore=tests/e2e/test_web_browser.py"
else
	@echo "== no CPython 3.13 found: the suite ran on $(PYTHON) only"
endif

# pytest's "no tests collected" (exit 5) is a failure here, never a pass.
suite: $(VENV)/.installed
	@$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make: pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

# What the benchmark needs beside the project: nginx and wrk, mitmproxy in bench/.venv-mitmproxy.
bench-deps: $(VENV)/.installed
	@$(BIN)/python bench/run.py --install-only

# waylay, mitmdump and no proxy side by side (docs/performance.md); BENCH_ARGS="--only S1".
bench: debs $(VENV)/.installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Coverage-guided fuzzing of the four parsers with atheris (docs/security-testing.md); not part
# of `make test`. FUZZ_SECONDS per target; FUZZ_TARGETS="head chunked" runs some. The seeds in
# fuzz/corpus/ are read only; what a run finds goes to build/fuzz/ (a crash: build/fuzz/crashes/).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= clienthello head chunked filters

fuzz: $(VENV)/.installed
	@$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/pip install -q atheris
	@for target in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/corpus/$$target build/fuzz/crashes || exit 1; \
		echo "== fuzz/$$target.py for $(FUZZ_SECONDS) s"; \
		PYTHONPATH=. $(BIN)/python fuzz/$$target.py -max_total_time=$(FUZZ_SECONDS) \
			-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix=build/fuzz/crashes/$$target- \
			build/fuzz/corpus/$$target fuzz/corpus/$$target || exit 1; \
	done

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/mypy
	MYPYPATH=src $(BIN)/mypy --strict examples

clean:
	rm -rf .venv .venv-newest build *.egg-info src/*.egg-info
