# Development tasks; `make` lists them.

# Interpreter that creates the virtualenv.
PY ?= python3
TORCH_SPEC ?= torch==2.13.0
# The pin in this file must agree with TORCH_SPEC; for another torch, clear it:
#   make install TORCH_SPEC=torch==2.5.1 CONSTRAINTS=
CONSTRAINTS ?= constraints-cpu.txt

VENV := .venv
PYTHON := $(VENV)/bin/python
# Written after a successful install, so later targets skip pip unless the
# package metadata or the pin changed. Delete it to force a reinstall.
STAMP := $(VENV)/.installed
CONSTRAINT_FLAGS := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))

.DEFAULT_GOAL := help
.PHONY: help install lint test test-slow test-browser app demo bench train-default clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{ printf "  %-10s %s\n", $$1, $$2 }'

$(PYTHON):
	$(PY) -m venv $(VENV)

# torch goes first, on its own, so the pinned CPU build is what the other
# dependencies find already installed.
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(PYTHON)
	$(PYTHON) -m pip install $(CONSTRAINT_FLAGS) "$(TORCH_SPEC)"
	$(PYTHON) -m pip install $(CONSTRAINT_FLAGS) -e ".[dev]"
	touch $@

install: $(STAMP) ## Create .venv and install lumiere with the dev tools

lint: install ## Check the code with ruff (lint rules and formatting, pyproject.toml)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

test: install ## Run the fast tests (everything not marked slow)
	$(PYTHON) -m pytest -n 2 -q

test-slow: install ## Run the tests marked slow
	$(PYTHON) -m pytest -n 2 -q -m slow

test-browser: install ## Run the app in headless Chromium (Debian's chromium) and save docs/app screenshots
	LUMIERE_SCREENSHOTS=docs/app $(PYTHON) -m pytest -q -m slow tests/test_app_browser.py -rs

app: install ## Start the local web app on 127.0.0.1 (Gradio), on the shipped models
	$(VENV)/bin/lumiere app

demo: install ## Run examples/demo.py, one editing example (inpainting) and the cascade (base, then super-resolution)
	$(PYTHON) examples/demo.py --overwrite
	$(PYTHON) examples/inpaint_video.py --overwrite
	$(PYTHON) examples/super_resolution.py --cascade --overwrite

train-default: install ## Train the embedded default model (hours on 2 CPU cores; rerun to resume)
	$(PYTHON) -m lumiere.recipes.shapes_tiny

bench: install ## Run the benchmarks (tens of minutes on 2 CPU cores) and rewrite docs/performance.md
	$(PYTHON) -m benchmarks.bench_peak
	$(PYTHON) -m benchmarks.bench_ops
	$(PYTHON) -m benchmarks.bench_models
	$(PYTHON) -m benchmarks.bench_models --memory
	$(PYTHON) -m benchmarks.bench_profile
	$(PYTHON) -m benchmarks.bench_few_step
	$(PYTHON) -m benchmarks.bench_sampling
	$(PYTHON) -m benchmarks.bench_training
	$(PYTHON) -m benchmarks.bench_windows
	$(PYTHON) -m benchmarks.bench_ssr_size
	$(PYTHON) -m benchmarks.report

clean: ## Remove .venv, build artefacts and caches
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
