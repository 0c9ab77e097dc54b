# The two commands of the README:
#   make demo   set everything up (system packages, virtualenv) and report on the sample data
#   make test   set everything up and run the tests (the heavy end-to-end cases left out)
#   make test-heavy  the heavy end-to-end cases (CI runs both), LibreOffice installed first
#   make lint   ruff (lint and format) and the type checker on transforms/ and schemas/
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
# WeasyPrint's libraries (pango; harfbuzz-subset for fast, byte-stable PDFs), the report fonts
# (DejaVu for Latin text, WenQuanYi Micro Hei for Chinese) and poppler-utils (the tests read
# the PDFs with pdftotext, pdffonts, pdfinfo), openssl (the mail tests make a certificate).
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
	fonts-wqy-microhei poppler-utils openssl
# what only the heavy tests need: LibreOffice reads every sheet of a report's workbook
HEAVY_TEST_PACKAGES := libreoffice-calc-nogui
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-heavy setup system-packages heavy-test-packages hooks lint mypy-path

demo: setup
	$(BIN)/funnel demo --out out

test: setup
	$(BIN)/python -m pytest -m "not heavy"

test-heavy: setup heavy-test-packages
	$(BIN)/python -m pytest -m heavy

lint: setup mypy-path
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

# the package folders under their installed names, for mypy (pyproject's [tool.mypy])
mypy-path:
	@mkdir -p build/mypy/funnel_reports
	@for d in flows transforms schemas report_templates; do \
		ln -sfn "$(CURDIR)/$$d" build/mypy/funnel_reports/$$d; done

setup: system-packages $(VENV)/.installed hooks

# a commit's subject in 72 characters or fewer (.githooks/commit-msg), in a git checkout
hooks:
	@if git rev-parse --git-dir >/dev/null 2>&1; then git config core.hooksPath .githooks; fi

system-packages:
	@if ! dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends \
			$(SYSTEM_PACKAGES); \
	fi

heavy-test-packages:
	@if ! dpkg -s $(HEAVY_TEST_PACKAGES) >/dev/null 2>&1; then \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends \
			$(HEAVY_TEST_PACKAGES); \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@
