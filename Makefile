# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
# `make lint` is the style and type gate CI runs before the tests (see the README's Development section).
#
# PyTorch: a bare `torch` requirement on a machine without torch pulls a multi-GB CUDA build, so
# setup installs $(TORCH_SPEC) explicitly before the package. On machines without CUDA that is the
# CPU build where a local wheel exists; elsewhere pass e.g.
#   make setup TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"   (CPU wheel)
#   make setup TORCH_SPEC=torch TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cu128"  (GPU)
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
BIN := $(VENV)/bin

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev,demo]"
	touch $@

demo: setup
	$(BIN)/growgpt demo

test: setup
	$(BIN)/python -m pytest -q

# ruff: pyflakes, pycodestyle (line length 120, whitespace), import order, pyupgrade, bugbear, as
# configured in pyproject.toml. mypy: the ML core whose tensor shapes and config types matter most.
lint: setup
	$(BIN)/python -m ruff check growgpt tests bench
	$(BIN)/python -m mypy growgpt/model.py growgpt/config.py growgpt/data.py growgpt/train.py

bench: setup
	$(BIN)/python bench/prepare_throughput.py
	$(BIN)/python bench/train_throughput.py

clean:
	rm -rf $(VENV) growgpt-demo .pytest_cache
