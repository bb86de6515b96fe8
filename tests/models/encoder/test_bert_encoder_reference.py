"""The Keras BERT encoder and the numpy reference against `transformers`' `BertModel`.

Runs where `transformers` and torch are installed: the Python 3.11 side environment (`make test`
runs `tests/models/encoder` there on the torch backend); skipped elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest
from bert_reference import forward
from keras import ops
from test_bert_encoder import SENTENCES, checkpoint, encoder, padded  # noqa: F401

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def reference(checkpoint):  # noqa: F811
    model = transformers.BertModel.from_pretrained(checkpoint.path).eval()
    ids, mask = padded(SENTENCES)
    with torch.no_grad():
        output = model(
            input_ids=torch.tensor(ids, dtype=torch.long),
            attention_mask=torch.tensor(mask, dtype=torch.long),
        ).last_hidden_state
    return output.numpy()


def test_hugging_face_tokens_of_the_test_sentences(checkpoint):  # noqa: F811
    tokenizer = transformers.BertTokenizer.from_pretrained(checkpoint.path)
    assert tokenizer("Barack Obama visited Paris with Angela Merkel")["input_ids"] == SENTENCES[0]


def test_keras_encoder_matches_transformers(encoder, reference):  # noqa: F811
    ids, mask = padded(SENTENCES)
    ours = ops.convert_to_numpy(encoder(ids, mask))
    np.testing.assert_allclose(ours[mask], reference[mask], atol=1e-4, rtol=0)


def test_numpy_reference_matches_transformers(checkpoint, reference):  # noqa: F811
    for row, sentence in enumerate(SENTENCES):
        expected = forward(
            sentence, checkpoint.weights, checkpoint.config.num_layers, checkpoint.config.num_heads
        )
        np.testing.assert_allclose(reference[row, : len(sentence)], expected, atol=1e-4, rtol=0)
