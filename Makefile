# mdlearn: the two commands of README.md, `make book` and `make test`, and their parts.
# Both set everything up on a fresh machine with Python 3.11 and are fast when re-run.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.mdlearn-installed
NBVAL  := _build/nbval-smoke

.PHONY: book test venv data nbval-prepare benchmarks clean clean-data

venv: $(STAMP)

# (re)install whenever the pinned requirements or the package metadata change
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	@touch $@

# the embedded default data: generated once, regenerated only when the renderer changes
data: $(STAMP)
	$(BIN)/mdlearn data ensure indoor indoor-smoke

book: data
	$(BIN)/mdlearn chapter check-clean
	$(BIN)/mdlearn book build

nbval-prepare: $(STAMP)
	rm -rf $(NBVAL)
	$(BIN)/mdlearn chapter prepare --preset smoke --out $(NBVAL)

test: data nbval-prepare
	$(BIN)/mdlearn chapter check-clean
	$(BIN)/python -m pytest tests mdlearn $(NBVAL) --nbval-lax --nbval-current-env -p no:cacheprovider

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf _build

clean-data:
	rm -rf data/indoor data/indoor-smoke
