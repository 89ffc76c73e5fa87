# Two commands set a fresh machine up: `make run` (the local stack) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# chalice package needs a region even though it calls no AWS API
export AWS_DEFAULT_REGION ?= us-east-1
# pip install playwright never fetches a browser; this keeps any other path from trying either
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: run test check fuzz bench package deploy install clean

$(STAMP): pyproject.toml requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "pip<26.3"  # chalice 1.34 pins pip<26.3
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	exec $(BIN)/python -m ops.local.stack

# Beside a running `make run` (another terminal): `make wait` returns once that stack answers (it reads the stack's
# .local/stack.json, so it needs no ports), at most WAIT_SECONDS; the system python3, standard library only, as a
# first `make run` may still be creating .venv. `make console ARGS="tenant list"` runs the operator console
# (portal-access) against that stack: its endpoint, keys, region and API port come from the same file.
.PHONY: wait console
WAIT_SECONDS ?= 300
wait:
	@$(PYTHON) -m ops.local.state wait --timeout $(WAIT_SECONDS)

console: $(STAMP)
	@$(BIN)/python -m ops.local.console $(ARGS)

test: $(STAMP)
	# the browser tests drive Debian's Chromium (Playwright never downloads a browser here)
	test -x /usr/bin/chromium || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)
	# axe-core (npm registry, pinned in tests/axe/package-lock.json): the console pages' accessibility check
	command -v npm >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y npm)
	test -f tests/axe/node_modules/axe-core/axe.min.js || npm ci --prefix tests/axe --no-audit --no-fund
	$(BIN)/python -m pytest -n 2 --dist loadfile

# Benchmarks (not part of `make test`): writes BENCHMARKS.md and docs/bench-bulk.png; about 20 minutes here.
# BULK_SIZES=10000,100000,500000 (rows; the default) sets the bulk files; ONLY=<section> measures one section again
# and merges it into the last report: `make bench ONLY=bulk BULK_SIZES=1000000` adds a 1,000,000-row file.
bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	# the HTTP section's load tool runs in a second process: wrk, from Debian
	command -v wrk >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk)
	$(BIN)/python -m bench $(if $(BULK_SIZES),--bulk-sizes $(BULK_SIZES)) $(if $(ONLY),--only $(ONLY))

# Static checks (issue 8): lint, types, the import layers (issue 15), security linter, supply chain.
check: $(STAMP)
	$(BIN)/ruff check chalicelib ops app.py tests bench fuzz tools
	$(BIN)/mypy
	$(BIN)/lint-imports  # the layers web/events -> flows -> core, and no import cycle ([tool.importlinter])
	$(BIN)/bandit -q -r chalicelib app.py --severity-level high
	$(BIN)/python tools/audit.py  # pip-audit of requirements.txt against PyPI (needs the network; fails without)

# Schemathesis over every operation of /v1/openapi.json against a local stack of its own (free ports, .local/fuzz/):
# no 5xx, every status and body as the spec says. FUZZ_EXAMPLES cases per operation and phase; FUZZ_TIMEOUT
# seconds bound the whole run (a run past it fails). Not part of `make test`; CI runs it after `make check`.
FUZZ_EXAMPLES ?= 25
FUZZ_TIMEOUT ?= 600
fuzz: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,fuzz]'
	$(BIN)/python -m fuzz --max-examples $(FUZZ_EXAMPLES) --timeout $(FUZZ_TIMEOUT) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

# Both stages, each linted (CI): build/package/<stage>/sam.json + deployment.zip. infra/compose.py merges
# infra/aws.json (AWS only) over infra/template.json (also the local stack's) for that stage; chalice package merges
# the result into its own template; cfn-lint must pass with no warning.
package: $(STAMP)
	rm -rf build/package
	$(MAKE) --no-print-directory build/package/dev/sam.json build/package/prod/sam.json

PACKAGE_SOURCES := app.py requirements.txt $(wildcard infra/*.json infra/*.py .chalice/*.json) \
	$(shell find chalicelib -name '*.py' -o -name '*.txt' -o -name '*.html' -o -name '*.gz' 2>/dev/null)
build/package/%/sam.json: $(STAMP) $(PACKAGE_SOURCES)
	rm -rf build/package/$*
	$(BIN)/python infra/compose.py $* build/merge-$*.json
	PORTAL_STAGE=$* $(BIN)/chalice package --stage $* --merge-template build/merge-$*.json build/package/$*
	$(BIN)/python infra/bytecode.py build/package/$*  # chalice ships sources only: every cold start would compile
	$(BIN)/cfn-lint build/package/$*/sam.json

# make deploy STAGE=dev|prod ARTIFACTS_BUCKET=<bucket> [REVIEW=1]: packages that stage, checks infra/params-<stage>.json
# (filled by the operator: it refuses placeholders and missing parameters), uploads the code to the artifacts bucket
# (aws cloudformation package) and deploys the stack portal-access-<stage> through a change set (REVIEW=1 creates the
# change set and stops, to be looked at and executed in the console). AWS credentials and region: the usual
# environment (AWS_PROFILE, AWS_REGION). The AWS CLI is the deploy extra's (pyproject.toml) unless AWS=... says.
STAGE ?=
ARTIFACTS_BUCKET ?=
PARAMS ?= infra/params-$(STAGE).json
AWS ?= $(BIN)/aws
deploy: $(STAMP)
	@case "$(STAGE)" in dev|prod) ;; *) echo "make deploy: STAGE=dev or STAGE=prod" >&2; exit 2;; esac
	@test -n "$(ARTIFACTS_BUCKET)" || { echo "make deploy: ARTIFACTS_BUCKET=<an S3 bucket of this account and region for the code>" >&2; exit 2; }
	$(MAKE) --no-print-directory build/package/$(STAGE)/sam.json
	$(BIN)/python infra/params.py check build/package/$(STAGE)/sam.json $(PARAMS)
	test -x "$(AWS)" || command -v "$(AWS)" >/dev/null || $(BIN)/python -m pip install -q -e '.[dev,deploy]'
	$(AWS) cloudformation package --template-file build/package/$(STAGE)/sam.json --use-json \
		--s3-bucket $(ARTIFACTS_BUCKET) --s3-prefix portal-access/$(STAGE) \
		--output-template-file build/package/$(STAGE)/packaged.json
	$(AWS) cloudformation deploy --template-file build/package/$(STAGE)/packaged.json --stack-name portal-access-$(STAGE) \
		--s3-bucket $(ARTIFACTS_BUCKET) --s3-prefix portal-access/$(STAGE) \
		--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
		--tags project=portal-access stage=$(STAGE) $(if $(REVIEW),--no-execute-changeset) \
		--parameter-overrides $$($(BIN)/python infra/params.py overrides build/package/$(STAGE)/sam.json $(PARAMS))

clean:
	rm -rf $(VENV) build .local .pytest_cache
