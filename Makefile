# Nightshift. The two commands a new machine needs: `make dev` and `make test`.

CARGO ?= cargo
LISTEN ?= 127.0.0.1:3000
DATA_DIR ?= .nightshift

VENV ?= .venv
PYTHON ?= python3

.PHONY: dev test lint fmt check build build-tools venv bench browser

## The whole store on this machine: http://127.0.0.1:3000 (no cloud account, state in .nightshift/).
dev:
	$(CARGO) run --quiet -p nightshift -- dev --listen $(LISTEN) --data-dir $(DATA_DIR) --config store.toml

## Everything: formatting, lints (warnings are errors), unit, property, use-case, handler and black-box tests.
test: lint venv
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/sam validate --lint --template template.yaml --region us-east-1
	$(VENV)/bin/python -m unittest discover -s infra/tests
	# The black-box tests run this binary; building it here keeps its compile time out of theirs.
	$(CARGO) build --locked -p nightshift
	$(MAKE) --no-print-directory browser
	$(CARGO) test --workspace --all-targets --locked

## Python test tools (moto server, cfn-lint, sam validate) from the pinned requirements file.
venv: $(VENV)/.installed

$(VENV)/.installed: infra/requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-dev.txt
	touch $@

## Browser tests (tests/browser): Chromium, driven by playwright-core, buys every product on
## a dev stack of its own, checking each page at 1280 and 390 px (no sideways scroll, no
## serious or critical axe-core violation). Screenshots go to target/browser/.
CHROMIUM ?= /usr/bin/chromium
BROWSER_DIR = tests/browser

browser: $(CHROMIUM) $(BROWSER_DIR)/node_modules/.installed
	$(CARGO) build --locked -p nightshift
	CHROMIUM=$(CHROMIUM) node --test --test-reporter=spec $(BROWSER_DIR)/

# Debian's Chromium, only when it is missing (playwright cannot download its own here).
$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

$(BROWSER_DIR)/node_modules/.installed: $(BROWSER_DIR)/package-lock.json
	cd $(BROWSER_DIR) && npm ci --no-audit --no-fund
	touch $@

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## Validate store.toml (also runs when the dev stack starts and when the functions build).
check:
	$(CARGO) run --quiet -p nightshift -- check --config store.toml

## Release bootstraps for Lambda, as `sam build` makes them: .aws-sam/build/<Function>/bootstrap.
## cargo-lambda and zig come from PyPI into .venv; the release profile is tuned for cold start.
build: build-tools
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/sam build --template template.yaml
	@ls -l .aws-sam/build/*/bootstrap

build-tools: $(VENV)/.build-installed

$(VENV)/.build-installed: infra/requirements-build.txt $(VENV)/.installed
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-build.txt
	touch $@

## Benchmarks: warm handler latency; cold starts of the release bootstraps (built by
## cargo-lambda as `sam build` builds them) under a fake Lambda Runtime API, beside a Python
## boto3 peer; 1,000 orders by 16 buyers end to end on the dev stack; AWS requests and cost
## per order through moto (prices in infra/bench/prices.toml). Prints a Markdown report with
## every target marked pass or MISS; JSON in target/bench/.
LAMBDA_BINS = checkout payment-callback order-page fulfillment mailer downloads

bench: build-tools
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda build --release $(addprefix --bin ,$(LAMBDA_BINS))
	@ls -l $(foreach b,$(LAMBDA_BINS),target/lambda/$(b)/bootstrap)
	$(CARGO) build --quiet --locked --profile harness -p nightshift -p nightshift-bench
	target/harness/nightshift-bench --bootstraps target/lambda --python $(VENV)/bin/python --peer infra/bench/peer.py --nightshift target/harness/nightshift --moto infra/moto_server.py --prices infra/bench/prices.toml --out target/bench
