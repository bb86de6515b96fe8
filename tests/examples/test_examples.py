"""The three examples of "a CRF in Keras" run for real, as a user would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GLOVE = (
    Path(os.environ.get("NER_SHARED_DIR", REPO.parent / "shared"))
    / "embeddings"
    / "glove.6B.50d"
    / "glove.6B.50d.txt.gz"
)

pytestmark = pytest.mark.slow


def run_example(module: str, *args: str) -> str:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    result = subprocess.run(
        [sys.executable, "-m", module, "--epochs", "2", "--max-sentences", "96", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_sequential_crf():
    out = run_example("examples.sequential_crf")
    assert "held-out negative log-likelihood per sentence:" in out
    assert "held-out entity F1:" in out


@pytest.mark.skipif(not GLOVE.exists(), reason="shared GloVe vectors not present")
def test_pretrained_embeddings():
    out = run_example("examples.pretrained_embeddings", "--vectors", str(GLOVE))
    assert "have a pretrained vector" in out and "held-out entity F1:" in out


def test_variable_length():
    out = run_example("examples.variable_length")
    assert "[mask from Embedding] held-out entity F1:" in out
    assert "[GradientTape + lengths] epoch 2: loss" in out
    assert "train_step 1 function(s) for all batch shapes" in out
