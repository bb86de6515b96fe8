"""Test configuration shared by every test directory."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault(
    "TF_CPP_MIN_LOG_LEVEL", "2"
)  # keep TensorFlow's start-up chatter out of test logs

REPO = Path(__file__).resolve().parents[1]
# Real corpora and vectors that must not live in the repo (licences, size): the `shared/` folder
# beside the checkout (as on our machines and in CI), or wherever NER_SHARED_DIR points.
SHARED_DIR = Path(os.environ.get("NER_SHARED_DIR", REPO.parent / "shared"))
