# Two commands set a fresh machine up: `make run` (the local stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# chalice package needs a region even though it calls no AWS API
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: run test package install clean

$(STAMP): pyproject.toml requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "pip<26.3"  # chalice 1.34 pins pip<26.3
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	exec $(BIN)/python -m chalicelib.local.stack

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

package: $(STAMP)
	rm -rf build/package
	PORTAL_STAGE=prod $(BIN)/chalice package --stage prod --merge-template infra/template.json build/package
	$(BIN)/cfn-lint build/package/sam.json

clean:
	rm -rf $(VENV) build .local .pytest_cache
