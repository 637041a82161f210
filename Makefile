# Every target creates or updates .venv itself, so each works on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint typecheck unit clean browser-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/sunshine up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: $(STAMP) lint browser-deps
	$(BIN)/pytest -q -p no:cacheprovider

# The browser tests drive Debian's chromium (Playwright never downloads a browser here); apt installs it
# when missing: `apt-get update` only when the first install fails, sudo only for a user who is not root.
# A CJK font too, so that the screenshots of the zh-CN pages show characters rather than boxes.
CHROMIUM := /usr/bin/chromium
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc
APT_INSTALL := env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null

browser-deps:
	@{ test -x $(CHROMIUM) && test -e $(CJK_FONT); } || { \
	  sudo=; if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo=sudo; fi; \
	  echo "installing Debian's chromium for the browser tests"; \
	  $$sudo $(APT_INSTALL) || { $$sudo apt-get update -qq && $$sudo $(APT_INSTALL); }; \
	}
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) is missing: install Debian's chromium package" >&2; exit 1; }

bench: $(STAMP)
	$(BIN)/python bench/evidence_ingest.py
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/queue.py
	$(BIN)/python bench/vision.py
	$(BIN)/python bench/transparency.py
	$(BIN)/python bench/transparency_db.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
