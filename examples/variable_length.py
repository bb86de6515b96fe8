"""Example 3: variable-length sentences — a Keras mask, and a custom `GradientTape` loop with lengths.

    python -m examples.variable_length [--epochs 4]

Part 1 lets `Embedding(mask_zero=True)` carry the mask to the CRF. Part 2 trains the same kind of
model in a hand-written TensorFlow loop, passing explicit sequence lengths to the CRF, on batches
padded only to their own longest sentence: one `tf.function` with unknown batch and time dimensions
serves every batch shape (no retracing).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf  # the GradientTape loop is TensorFlow's; the model code is plain Keras 3
from linear_crf.crf import CRF

from examples.common import entity_f1, example_arguments, load_sample, print_predictions


def encoder(vocabulary_size: int, num_tags: int) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(vocabulary_size, 64, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.LSTM(64, return_sequences=True)),
            keras.layers.Dense(num_tags),
        ]
    )


def main(argv=None) -> None:
    args = example_arguments(__doc__.splitlines()[0], epochs=4, argv=argv)
    keras.utils.set_random_seed(0)

    sample = load_sample(args.max_sentences)
    train, test, words, tags = sample.train, sample.test, sample.words, sample.tags

    # Part 1: the mask comes from Embedding(mask_zero=True) through the BiLSTM into the CRF.
    crf = CRF(len(tags), tag_names=tags, tag_scheme="iob2")
    model = keras.Sequential([encoder(len(words) + 2, len(tags)), crf])
    model.compile(optimizer=keras.optimizers.Adam(5e-3), loss=crf.loss)
    model.fit(train.token_ids, train.tag_ids, batch_size=32, epochs=args.epochs, verbose=2)
    predicted = keras.ops.convert_to_numpy(CRF.tag_ids(model.predict(test.token_ids, verbose=0)))
    print(f"[mask from Embedding] held-out entity F1: {entity_f1(test, predicted, tags):.1f}")

    # Part 2: a custom loop; the CRF gets explicit lengths instead of a mask.
    scores = encoder(len(words) + 2, len(tags))
    crf = CRF(len(tags), tag_names=tags, tag_scheme="iob2")
    crf.build((None, None, len(tags)))
    optimizer = keras.optimizers.Adam(5e-3)
    variables = scores.trainable_variables + crf.trainable_variables
    optimizer.build(variables)

    spec = [
        tf.TensorSpec((None, None), tf.int32),
        tf.TensorSpec((None, None), tf.int32),
        tf.TensorSpec((None,), tf.int32),
    ]

    # XLA would compile once per batch shape here; the graph handles every shape with one trace.
    @tf.function(input_signature=spec)
    def train_step(token_ids, tag_ids, lengths):
        with tf.GradientTape() as tape:
            outputs = crf(scores(token_ids, training=True), lengths=lengths, training=True)
            loss = crf.loss(tag_ids, outputs)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    @tf.function(input_signature=[spec[0], spec[2]])
    def decode(token_ids, lengths):
        return CRF.tag_ids(crf(scores(token_ids), lengths=lengths))

    order = np.argsort(train.lengths)  # batches of similar length: little padding
    for epoch in range(args.epochs):
        losses = []
        for start in range(0, len(order), 32):
            rows = order[start : start + 32]
            width = int(train.lengths[rows].max())  # padded only to this batch's longest sentence
            losses.append(
                float(
                    train_step(
                        train.token_ids[rows, :width],
                        train.tag_ids[rows, :width],
                        train.lengths[rows],
                    )
                )
            )
        print(f"[GradientTape + lengths] epoch {epoch + 1}: loss {np.mean(losses):.3f}")
    predicted = decode(test.token_ids, test.lengths).numpy()
    print(f"[GradientTape + lengths] held-out entity F1: {entity_f1(test, predicted, tags):.1f}")
    print(
        f"traced shapes: train_step {len(train_step._list_all_concrete_functions())} function(s) for all batch shapes"
    )
    print_predictions(test, predicted, tags)


if __name__ == "__main__":
    main()
