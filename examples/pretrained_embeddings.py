"""Example 2: the BiLSTM-CRF of example 1 on a frozen pretrained `Embedding` matrix.

    python -m examples.pretrained_embeddings --vectors glove.6B.50d.txt.gz [--epochs 8]

Any GloVe / word2vec-text / fastText `.vec` file, plain or gzipped, read as a stream: only the rows of
the training vocabulary are kept.
"""

from __future__ import annotations

import keras
from linear_crf.crf import CRF

from examples.common import entity_f1, example_arguments, load_sample, print_predictions
from models.embeddings import load_embedding_matrix


def main(argv=None) -> None:
    args = example_arguments(__doc__.splitlines()[0], epochs=8, argv=argv, vectors=True)
    keras.utils.set_random_seed(0)

    sample = load_sample(args.max_sentences)
    train, test, words, tags = sample.train, sample.test, sample.words, sample.tags
    vectors = load_embedding_matrix(args.vectors, words)  # rows 0 (padding) and 1 (unknown) first
    print(
        f"{vectors.num_found} of {len(words)} words have a pretrained vector ({vectors.coverage:.0%})"
    )

    crf = CRF(len(tags), tag_names=tags, tag_scheme="iob2")
    model = keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(
                *vectors.matrix.shape,
                embeddings_initializer=keras.initializers.Constant(vectors.matrix),
                trainable=False,  # frozen: the pretrained vectors stay as they are
                mask_zero=True,
            ),
            keras.layers.Bidirectional(keras.layers.LSTM(64, return_sequences=True)),
            keras.layers.Dense(len(tags)),
            crf,
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(5e-3), loss=crf.loss)
    model.fit(train.token_ids, train.tag_ids, batch_size=32, epochs=args.epochs, verbose=2)
    print(
        f"held-out negative log-likelihood per sentence: {model.evaluate(test.token_ids, test.tag_ids, verbose=0):.3f}"
    )
    predicted = keras.ops.convert_to_numpy(CRF.tag_ids(model.predict(test.token_ids, verbose=0)))
    print(f"held-out entity F1: {entity_f1(test, predicted, tags):.1f}")
    print_predictions(test, predicted, tags)


if __name__ == "__main__":
    main()
