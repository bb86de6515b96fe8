"""Example 1: a CRF as the last layer of `keras.Sequential` — a BiLSTM-CRF trained with `fit`.

    python -m examples.sequential_crf [--epochs 8]

Trains on the bundled WNUT-17 sample, reports the CRF's negative log-likelihood with `evaluate`,
and decodes Viterbi tag paths with one call: `CRF.tag_ids(model.predict(x))`.
"""

from __future__ import annotations

import keras
from linear_crf.crf import CRF

from examples.common import entity_f1, example_arguments, load_sample, print_predictions


def main(argv=None) -> None:
    args = example_arguments(__doc__.splitlines()[0], epochs=8, argv=argv)
    keras.utils.set_random_seed(0)

    sample = load_sample(args.max_sentences)
    train, test, words, tags = sample.train, sample.test, sample.words, sample.tags

    crf = CRF(len(tags), tag_names=tags, tag_scheme="iob2")  # IOB2 constraints: never "O I-x"
    model = keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(len(words) + 2, 64, mask_zero=True),  # mask follows padding
            keras.layers.Bidirectional(keras.layers.LSTM(64, return_sequences=True)),
            keras.layers.Dense(len(tags)),
            crf,
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(5e-3), loss=crf.loss)
    model.fit(train.token_ids, train.tag_ids, batch_size=32, epochs=args.epochs, verbose=2)
    loss = model.evaluate(test.token_ids, test.tag_ids, verbose=0)
    print(f"held-out negative log-likelihood per sentence: {loss:.3f}")

    predicted = keras.ops.convert_to_numpy(CRF.tag_ids(model.predict(test.token_ids, verbose=0)))
    print(f"held-out entity F1: {entity_f1(test, predicted, tags):.1f}")
    print_predictions(test, predicted, tags)


if __name__ == "__main__":
    main()
