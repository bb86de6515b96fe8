"""Tests of models/run_fn.py, models/train.py and models/export.py: training from transformed
TFRecords and the exported SavedModel.

Builds a real Transform output with tft_beam on a few sentences, calls `run_fn` with the
`FnArgs` fields it reads, and loads the export in this process.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
from transform_fixtures import serialized_example, trainer_fn_args, write_transformed

from models import run_fn, train
from models.features import SIGNATURES
from models.warm_start import model_artifact_dir

pytestmark = pytest.mark.slow

TAGS = ("O", "B-person", "I-person", "B-location", "I-location")
SENTENCES = [
    (["Obama", "visited", "Paris"], ["B-person", "O", "B-location"]),
    (["Paris", "Hilton", "said", "hi"], ["B-person", "I-person", "O", "O"]),
    (["I", "love", "New", "York", "and", "Paris", "a", "lot", "really"], ["O"] * 9),
    (["hello"], ["O"]),
]
MAX_LENGTH = 6


def custom_config(embeddings_path=None, word_embedding_dim=4):
    return {
        "tagger": {
            "preprocessing": {"tag_names": list(TAGS), "max_length": MAX_LENGTH,
                              "max_word_length": 5, "token_frequency_threshold": 1},
            "model": {"word_embedding_dim": word_embedding_dim, "casing_embedding_dim": 2,
                      "char_embedding_dim": 3, "char_filters": 4, "lstm_units": 4,
                      "pretrained_embeddings_path": embeddings_path},
            "training": {"epochs": 2, "batch_size": 2, "early_stopping_start_epoch": 0},
        }
    }  # fmt: skip


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    """A pretrained vectors file (4 values per word)."""
    path = tmp_path_factory.mktemp("vectors") / "vectors.txt"
    path.write_text("paris 1 2 3 4\nobama 5 6 7 8\nzebra 9 9 9 9\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def transformed(tmp_path_factory, vectors):
    """A Transform output and transformed train/eval TFRecords, like TFX's Transform writes,
    with the pretrained words of `vectors` in the word vocabulary."""
    directory = tmp_path_factory.mktemp("transformed")
    write_transformed(directory, SENTENCES, custom_config(vectors))
    return directory


def fn_args(directory, output_directory, config):
    return trainer_fn_args(directory, output_directory, config)


def test_trains_and_exports_three_signatures_that_tag_alike_at_any_length(
    transformed, vectors, tmp_path
):
    args = fn_args(transformed, tmp_path, custom_config(vectors))
    run_fn.run_fn(args)

    assert os.listdir(args.model_run_dir)  # TensorBoard logs
    # The SavedModel holds the network's weights and nothing else: no optimizer state (Adam's
    # two moments per trainable weight were saved with it before). The warm-start file, written
    # from `model.weights` by another path, has every weight once except the frozen pretrained
    # table, which the SavedModel already holds (and every run rebuilds from the vectors file).
    saved = dict(
        tf.train.list_variables(os.path.join(args.serving_model_dir, "variables", "variables"))
    )
    saved.pop("_CHECKPOINTABLE_OBJECT_GRAPH")
    assert not [name for name in saved if "optimizer" in name]
    frozen = [name for name in saved if "frozen" in name]
    assert len(frozen) == 1, frozen
    warm_start = os.path.join(model_artifact_dir(args.serving_model_dir), "warm_start")
    with np.load(os.path.join(warm_start, "weights.npz")) as weights:
        assert not [key for key in weights.files if "frozen" in key]
        assert sum(np.prod(shape) for shape in saved.values()) == sum(
            weights[key].size for key in weights.files
        ) + np.prod(saved[frozen[0]])
    # On disk the variables take what the network's weights take, and nothing more.
    checkpoint = os.path.join(args.serving_model_dir, "variables", "variables")
    dtypes = tf.train.load_checkpoint(checkpoint).get_variable_to_dtype_map()
    weight_bytes = sum(np.prod(shape) * dtypes[name].size for name, shape in saved.items())
    variables_dir = os.path.join(args.serving_model_dir, "variables")
    file_bytes = sum(
        os.path.getsize(os.path.join(variables_dir, name)) for name in os.listdir(variables_dir)
    )
    assert weight_bytes <= file_bytes <= 1.01 * weight_bytes + 100_000, (file_bytes, weight_bytes)
    model = tf.saved_model.load(args.serving_model_dir)
    assert set(SIGNATURES) <= set(model.signatures)

    sentences = [tokens for tokens, _ in SENTENCES]
    by_examples = model.signatures["serving_default"](
        examples=tf.constant([serialized_example(tokens) for tokens in sentences])
    )
    width = max(len(tokens) for tokens in sentences)
    by_tokens = model.signatures["serve_tokens"](
        tokens=tf.constant([tokens + [""] * (width - len(tokens)) for tokens in sentences])
    )
    by_sentences = model.signatures["serve_sentences"](
        sentences=tf.constant([" ".join(tokens) for tokens in sentences])
    )
    for outputs in (by_examples, by_sentences):
        assert set(outputs) == set(by_tokens)
        for key in by_tokens:
            np.testing.assert_array_equal(outputs[key].numpy(), by_tokens[key].numpy(), key)
    # Whole sentences, the one longer than max_length included (9 > 6 tokens).
    lengths = by_tokens["lengths"].numpy()
    np.testing.assert_array_equal(lengths, [len(t) for t in sentences])
    tags = by_tokens["tags"].numpy()
    assert tags.shape == (len(sentences), width)
    for row, length in zip(tags, lengths):
        assert {t.decode() for t in row[:length]} <= set(TAGS)
        assert set(row[length:]) <= {b""}


def test_trimmed_batches_are_the_padded_ones_cut_to_their_longest_sentence(transformed):
    import tensorflow_transform as tft

    from models.config import TaggerConfig

    config = TaggerConfig.from_custom_config(custom_config())
    args = fn_args(transformed, transformed, custom_config())

    def batches(trim):
        features = run_fn.transformed_batches(
            args.train_files,
            args.data_accessor,
            tft.TFTransformOutput(args.transform_graph_path),
            batch_size=2,
            shuffle=False,
            seed=0,
            shuffle_buffer_size=1,
        )
        dataset = train.model_batches(features, config.model.output, trim=trim)
        return [(inputs, tag_ids.numpy()) for inputs, tag_ids in dataset]

    padded, trimmed = batches(trim=False), batches(trim=True)
    lengths = [min(len(tokens), MAX_LENGTH) for tokens, _ in SENTENCES]  # 3, 4, 6, 1
    assert [tag_ids.shape[1] for _, tag_ids in padded] == [MAX_LENGTH, MAX_LENGTH]
    assert [tag_ids.shape[1] for _, tag_ids in trimmed] == [
        max(lengths[0:2]),
        max(lengths[2:4]),
    ]
    for (padded_inputs, padded_tags), (inputs, tag_ids) in zip(padded, trimmed):
        width = tag_ids.shape[1]
        assert (padded_tags[:, width:] == 0).all()  # only padding was cut
        np.testing.assert_array_equal(tag_ids, padded_tags[:, :width])
        assert set(inputs) == set(padded_inputs)
        for key, value in inputs.items():
            np.testing.assert_array_equal(value.numpy(), padded_inputs[key].numpy()[:, :width])


def test_vectors_of_another_size_are_refused(tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("paris 1 2 3\n", encoding="utf-8")
    config = custom_config(str(vectors), word_embedding_dim=4)
    write_transformed(tmp_path, SENTENCES, config)
    with pytest.raises(
        ValueError, match=r"Invalid value for `word_embedding_dim`. Expected the size"
    ):
        run_fn.run_fn(fn_args(tmp_path, tmp_path, config))


@pytest.mark.parametrize("trainer_vectors", ["other", None])
def test_trainer_refuses_other_pretrained_words_than_transform(
    transformed, tmp_path, trainer_vectors
):
    # Transform put "paris", "obama", "zebra" at ids 2-4; a Trainer configured with another
    # vectors file (or none) would give those rows to other words.
    if trainer_vectors == "other":
        trainer_vectors = tmp_path / "other.txt"
        trainer_vectors.write_text("zebra 1 2 3 4\nparis 5 6 7 8\n", encoding="utf-8")
        trainer_vectors = str(trainer_vectors)
    args = fn_args(transformed, tmp_path, custom_config(trainer_vectors))
    with pytest.raises(ValueError, match=r"The transform graph was built with other pretrained"):
        run_fn.run_fn(args)


def placeholder_eval_dataset():
    """An eval split for `training_callbacks` in tests that only use its other callbacks."""
    return tf.data.Dataset.from_tensors(({"x": tf.zeros((1, 2))}, tf.ones((1, 3), tf.int64)))


def test_learning_rate_decays_per_epoch_as_ma_and_hovy():
    import keras

    from models.config import TaggerConfig

    config = custom_config()
    config["tagger"]["training"].update(learning_rate=0.01, learning_rate_decay=0.5)
    tagger_config = TaggerConfig.from_custom_config(config)
    eval_dataset = placeholder_eval_dataset()
    callbacks = train.training_callbacks(eval_dataset, tagger_config)
    schedulers = [c for c in callbacks if isinstance(c, keras.callbacks.LearningRateScheduler)]
    assert len(schedulers) == 1

    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=4, verbose=0,
              callbacks=[schedulers[0], Record()])  # fmt: skip
    # 0.01 / (1 + 0.5 e) for e = 0..3, worked out by hand.
    np.testing.assert_allclose(seen, [0.01, 0.01 / 1.5, 0.005, 0.004], rtol=1e-6)
    tagger_config = TaggerConfig.from_custom_config(custom_config())
    assert not [
        c
        for c in train.training_callbacks(eval_dataset, tagger_config)
        if isinstance(c, keras.callbacks.LearningRateScheduler)
    ]


def test_weight_averaging_evaluates_and_keeps_the_moving_average():
    import keras

    from models.config import ModelConfig, TaggerConfig, TrainingConfig
    from models.tagger import compile_tagger

    config = custom_config()
    config["tagger"]["training"].update(weight_averaging=0.5)
    tagger_config = TaggerConfig.from_custom_config(config)
    eval_dataset = placeholder_eval_dataset()
    callbacks = train.training_callbacks(eval_dataset, tagger_config)
    kinds = [type(c) for c in callbacks]
    assert kinds.index(keras.callbacks.SwapEMAWeights) < kinds.index(train.EntityF1Callback)
    swap = callbacks[kinds.index(keras.callbacks.SwapEMAWeights)]

    class Record(keras.callbacks.Callback):
        """The model's weights after every step and at every epoch's end."""

        def __init__(self):
            super().__init__()
            self.steps, self.epoch_ends = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.steps.append([w.copy() for w in self.model.get_weights()])

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_ends.append([w.copy() for w in self.model.get_weights()])

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(8, 2)), rng.integers(1, 3, size=(8,))

    def fit(training, callbacks):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, activation="softmax")])
        compile_tagger(model, ModelConfig(output="softmax"), training)
        model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0, callbacks=callbacks)
        return model

    record, plain = Record(), Record()
    averaged = fit(tagger_config.training, [swap, record])
    fit(TrainingConfig(learning_rate=tagger_config.training.learning_rate), [plain])
    raw, plain_raw, at_epoch_end = record.steps, plain.steps, record.epoch_ends
    # Averaging does not change the trained weights: the same steps as plain Adam.
    assert len(raw) == len(plain_raw) == 8
    for ours, reference in zip(raw, plain_raw):
        for a, b in zip(ours, reference):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # Keras's EMA: the first step's weights, then average = 0.5 * average + 0.5 * weights.
    expected, average = [], raw[0]
    for step, weights in enumerate(raw[1:], start=2):
        average = [0.5 * a + 0.5 * w for a, w in zip(average, weights)]
        if step % 4 == 0:
            expected.append(average)
    assert len(at_epoch_end) == 2
    for seen, wanted in zip(at_epoch_end, expected):
        for a, b in zip(seen, wanted):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    for a, b in zip(averaged.get_weights(), expected[-1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_training_and_export_import_no_tfx():
    """`models.train` and `models.export` are TFX-free; only the run_fn glue imports TFX."""
    import subprocess
    import sys

    code = (
        "import sys, models.train, models.export\n"
        "tfx = sorted({m.split('.')[0] for m in sys.modules}"
        " & {'tfx', 'tfx_bsl', 'tensorflow_transform', 'apache_beam'})\n"
        "print(tfx)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


def plain_batches(num_words: int) -> tf.data.Dataset:
    """Six sentences of transformed features built by hand (word ids 2 .. num_words - 1), in
    batches of 2: what Transform would give, without Transform."""
    rng = np.random.default_rng(0)
    num, length = 6, MAX_LENGTH
    lengths = rng.integers(1, length + 1, size=num)
    mask = np.arange(length)[None, :] < lengths[:, None]
    features = {
        "token_ids": np.where(mask, rng.integers(2, num_words, size=(num, length)), 0),
        "casing_ids": np.where(mask, 1, 0),
        "char_ids": np.where(mask[..., None], rng.integers(2, 5, size=(num, length, 5)), 0),
        "lengths": lengths,
        "tag_ids": np.where(mask, rng.integers(1, len(TAGS) + 1, size=(num, length)), 0),
    }
    return tf.data.Dataset.from_tensor_slices(
        {key: tf.constant(value, tf.int64) for key, value in features.items()}
    ).batch(2)


def test_train_takes_batches_of_plain_tensors():
    """No Transform output, no TFX: feature batches built by hand train a model."""
    from models.config import TaggerConfig

    config = TaggerConfig.from_custom_config(custom_config())
    batches = plain_batches(num_words=7)
    result = train.train(config, batches, batches, ["a", "b", "c", "d", "e"], ["x", "y", "z"])
    assert len(result.history["val_entity_f1"]) >= 1
    assert result.compatibility["vocabularies"]["word_embedding"] == ["a", "b", "c", "d", "e"]
    assert result.model.get_layer("word_embedding").input_dim == 7


def test_tensorboard_logs_and_model_config_hold_no_embedding_matrix(tmp_path):
    """A 20,000-word vectors file: the TensorBoard events and the model config stay small.

    Before, the pretrained matrix went in as a `Constant` initializer, whose config holds its
    value: the model-config summary TensorBoard writes carried the matrix as JSON (836 MB of it
    for GloVe's 400k x 50). Here the matrix would be about 20 MB of JSON."""
    from models.config import TaggerConfig

    num_words, dim = 20_000, 50
    rng = np.random.default_rng(0)
    words = [f"w{index}" for index in range(num_words)]
    vectors = tmp_path / "vectors.txt"
    with open(vectors, "w", encoding="utf-8") as file:
        for word, row in zip(words, rng.normal(size=(num_words, dim)).round(4)):
            file.write(word + " " + " ".join(map(str, row)) + "\n")
    config = TaggerConfig.from_custom_config(custom_config(str(vectors), word_embedding_dim=dim))
    batches = plain_batches(num_words=num_words + 2)
    log_dir = tmp_path / "logs"
    result = train.train(config, batches, batches, words, ["x", "y", "z"], log_dir=str(log_dir))
    events = [path for path in log_dir.rglob("*") if path.is_file()]
    assert events, "TensorBoard wrote nothing"
    total = sum(path.stat().st_size for path in events)
    # The traced train step's graph (about 1.1 MB, whatever the vocabulary) and kilobytes of
    # scalars and model config; with the matrix in the config it was 42 MB.
    assert total < 3_000_000, {
        str(path.relative_to(log_dir)): path.stat().st_size for path in events
    }
    assert len(result.model.to_json()) < 100_000
    # The vectors are in the weights all the same (row 2 is the first vocabulary word).
    row = np.asarray(result.model.get_layer("word_embedding").frozen)[2]
    expected = np.loadtxt(vectors, usecols=range(1, dim + 1), max_rows=1, dtype=np.float32)
    np.testing.assert_allclose(row, expected, rtol=1e-6)
