# The two entry points of the README: `make run` (the app on the shipped model) and `make test`.
# Both create or reuse .venv and install what they need; `make test` also installs Debian's
# chromium for the browser tests when it runs as root.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 7860
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1

AXE := .ci/axe/node_modules/axe-core/axe.min.js

.PHONY: run test lint venv browser axe clean-venv

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt 2>&1 \
		| grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import torch, open_clip, gradio, captum, fairlearn, geomloss"
	touch $(STAMP)

venv: $(STAMP)

browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
			|| echo "warning: could not install chromium; browser tests will be skipped"; \
		else echo "warning: /usr/bin/chromium missing and not root; browser tests will be skipped"; fi; \
	fi

# axe-core for the accessibility test, at the version pinned in .ci/axe/package-lock.json
axe: $(AXE)

$(AXE): .ci/axe/package.json .ci/axe/package-lock.json
	npm ci --prefix .ci/axe --no-audit --no-fund --loglevel=error
	test -f $(AXE) && touch $(AXE)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

run: venv
	$(BIN)/python -m app --host $(HOST) --port $(PORT)

# pytest exit code 5 means "no tests collected": that is our failure, not a success.
test: venv browser axe lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

clean-venv:
	rm -rf $(VENV)
