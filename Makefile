# Two entry points: `make book` builds the whole book, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test lint install clean browser student

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(BIN)/optdyn build --profile default --jobs 2

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks book
	$(BIN)/ruff format --check src tests benchmarks

# The browser test drives Debian's Chromium: installed here where we may (root, apt-get); elsewhere the
# test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "make: no Chromium (needs root and apt-get); the browser test will be skipped"

# Course editions: _build/editions/student (no solutions) and _build/editions/instructor.
student: $(STAMP)
	$(BIN)/optdyn student

# pytest exits 5 when it collects no test: said out loud, not counted as a failure.
test: $(STAMP) lint browser
	$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; exit 0; fi; exit $$rc

clean:
	rm -rf _build book/_executed
