"""Tagger quality on WNUT-17: test entity F1 of the CRF and the softmax ablation, +/- GloVe.

Trains on the WNUT-17 train split, selects the epoch on the dev split (early stopping on the dev
entity F1, as the TFX Trainer does) and scores the test split with conlleval semantics
(`models.entity_scoring.score_entities`). Each setting runs with several seeds; the table gives
mean +/- sample standard deviation of the test F1, the mean dev F1 of the kept epoch, the mean
number of epochs trained and the mean wall time per run (training and scoring, not featurising).

The featurisation and the model are the pipeline's own, not a copy:

- Transform's `models.preprocessing.preprocessing_fn` runs once with tft_beam: `AnalyzeDataset` on
  train, `TransformDataset` on train, dev and test; the transform graph and the transformed
  TFRecords are cached under `--cache-dir` (keyed by the preprocessing config and the vectors
  file, which decides the word vocabulary), so later runs and settings reuse them.
- Training is `models.train.train`, the Trainer's own (build, pretrained embeddings,
  learning-rate schedule, eval entity F1, early stopping), with the defaults of `models.config`
  unless overridden with `--set section.field=value`.

Sentences are truncated to `PreprocessingConfig.max_length` tokens (as in the pipeline). The test
F1 is nevertheless scored against the complete gold: gold entities that start beyond the window
are counted as missed (none is predicted there). Some WNUT-17 test sentences are longer than 64.
The exported model does not cut them: its `serve_sentences` tags long sentences whole through
overlapping windows, and "test F1 as served" scores the test split that way (the same weights).

Figures (3 seeds, the four settings, and the tuning sweep that chose the defaults): BENCHMARKS.md.

Data: `$NER_SHARED_DIR` or `<repo>/../shared` (`datasets/wnut17`, `embeddings/glove.6B.50d`).

Usage (2 shared CPU cores: nice it):

    nice -n 15 .venv/bin/python -m benchmarks.tagger_quality --seeds 1 2 3 \
        --settings crf+glove softmax+glove crf softmax --output outputs/tagger_quality.md
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS = ("crf+glove", "softmax+glove", "crf", "softmax")
"""Output layer, and whether the word embedding starts from the shared GloVe vectors."""

TRAIN_FILE = "datasets/wnut17/wnut17train.conll"
DEV_FILE = "datasets/wnut17/emerging.dev.conll"
TEST_FILE = "datasets/wnut17/emerging.test.annotated"
GLOVE_FILE = "embeddings/glove.6B.50d/glove.6B.50d.txt.gz"
SPLITS = ("train", "dev", "test")


def shared_dir() -> Path:
    """`$NER_SHARED_DIR`, else the `shared/` folder beside the checkout."""
    return Path(os.environ.get("NER_SHARED_DIR", REPO.parent / "shared"))


@dataclasses.dataclass(frozen=True)
class RunResult:
    """One training run.

    Attributes:
        setting: one of `SETTINGS`.
        seed: the training seed.
        test_f1: entity F1 (percent) on the complete test gold.
        dev_f1: entity F1 (percent) on dev of the kept (best) epoch.
        epochs: epochs trained (early stopping included).
        best_epoch: 1-based epoch whose weights were kept.
        minutes: wall time of the run (build, train, score).
        served_test_f1: test entity F1 (percent) of the serving path: long sentences tagged whole
            through overlapping windows (`TaggerServingModule.tag_token_lists`), not cut.
            None in records written before it was measured.
    """

    setting: str
    seed: int
    test_f1: float
    dev_f1: float
    epochs: int
    best_epoch: int
    minutes: float
    served_test_f1: float | None = None


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(config, overrides: list[str]):
    """`section.field=value` (value as JSON, else a string) replaced in a `TaggerConfig`."""
    for override in overrides:
        key, _, value = override.partition("=")
        section, _, field = key.partition(".")
        if not _ or not hasattr(config, section) or not field:
            raise ValueError(
                "Invalid value for `--set`. Expected section.field=value with section in "
                f"preprocessing, model, training. Received: --set={override!r}"
            )
        updated = dataclasses.replace(getattr(config, section), **{field: _parse_value(value)})
        config = dataclasses.replace(config, **{section: updated})
    return config


def read_splits(data_dir: Path) -> dict[str, list]:
    """The `components.conll_format.Sentence`s of train, dev and test."""
    from components.conll_format import read_conll

    files = {"train": TRAIN_FILE, "dev": DEV_FILE, "test": TEST_FILE}
    return {split: list(read_conll(data_dir / name)) for split, name in files.items()}


def transform(splits: dict[str, list], config, cache_dir: Path) -> Path:
    """Runs `preprocessing_fn` with tft_beam once per preprocessing config; returns its folder.

    The folder holds `transform/` (the transform graph, as Transform writes it) and
    `<split>-*.tfrecord` (transformed tf.Examples).
    """
    import apache_beam as beam
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

    from models import preprocessing

    # The vectors file decides which words join the word vocabulary.
    key = json.dumps(
        {
            **dataclasses.asdict(config.preprocessing),
            "pretrained_embeddings_path": config.model.pretrained_embeddings_path,
        },
        sort_keys=True,
    )
    final = cache_dir / hashlib.sha256(key.encode()).hexdigest()[:16]
    if (final / "done").exists():
        return final
    # Built under a name of this process's own and renamed when complete: two processes that
    # featurise the same configuration at once never mix their files.
    directory = cache_dir / f".{final.name}.{os.getpid()}"
    directory.mkdir(parents=True, exist_ok=True)
    raw_metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(
            {
                preprocessing.TOKENS_KEY: tf.io.VarLenFeature(tf.string),
                preprocessing.TAGS_KEY: tf.io.VarLenFeature(tf.string),
            }
        )
    )
    raw = {
        split: [
            {
                preprocessing.TOKENS_KEY: [t.encode("utf-8") for t in sentence.tokens],
                preprocessing.TAGS_KEY: [t.encode("utf-8") for t in sentence.tags],
            }
            for sentence in sentences
        ]
        for split, sentences in splits.items()
    }
    fn = functools.partial(preprocessing.preprocessing_fn, custom_config=config.to_custom_config())
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(directory / "tmp")):
        data = {
            split: pipeline | f"Create{split}" >> beam.Create(rows, reshuffle=False)
            for split, rows in raw.items()
        }
        transform_fn = (data["train"], raw_metadata) | tft_beam.AnalyzeDataset(fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(directory / "transform"))
        for split in SPLITS:
            transformed, metadata = ((data[split], raw_metadata), transform_fn) | (
                f"Transform{split}" >> tft_beam.TransformDataset()
            )
            coder = tft.coders.ExampleProtoCoder(metadata.schema)
            _ = (
                transformed
                | f"Encode{split}" >> beam.Map(coder.encode)
                | f"Write{split}"
                >> beam.io.WriteToTFRecord(
                    str(directory / split), file_name_suffix=".tfrecord", num_shards=1
                )
            )
    (directory / "done").write_text(key)
    try:
        directory.rename(final)
    except OSError:  # Another process finished first (or an unfinished folder is in the way).
        if not (final / "done").exists():
            raise
    return final


def _gold_entities_beyond(sentences, max_length: int) -> tuple[int, int]:
    """(gold entities starting at or after `max_length`, entities straddling it)."""
    from models.entity_scoring import extract_entities

    beyond = straddling = 0
    for sentence in sentences:
        for start, end, _ in extract_entities(sentence.tags):
            beyond += start >= max_length
            straddling += start < max_length < end
    return beyond, straddling


def setting_config(config, setting: str):
    """`config` with the output layer and the pretrained vectors of `setting`."""
    output = setting.split("+")[0]
    glove = str(shared_dir() / GLOVE_FILE) if setting.endswith("+glove") else None
    model = dataclasses.replace(config.model, output=output, pretrained_embeddings_path=glove)
    return dataclasses.replace(config, model=model)


def train_and_score(
    config, setting: str, seed: int, transformed: Path, test_sentences
) -> RunResult:
    """Trains one model with the Trainer's `models.train.train` and scores dev and test.

    Args:
        config: the `TaggerConfig` of the setting (`setting_config`).
    """
    import numpy as np
    import tensorflow_transform as tft
    from tfx_bsl.public import tfxio

    from models import preprocessing
    from models.entity_scoring import score_entities
    from models.features import CHAR_VOCABULARY_NAME
    from models.tagger import predicted_tag_ids
    from models.train import model_batches, train

    start = time.monotonic()
    model_config = config.model
    output = model_config.output
    config = dataclasses.replace(config, training=dataclasses.replace(config.training, seed=seed))
    tf_transform_output = tft.TFTransformOutput(str(transformed / "transform"))
    schema = tf_transform_output.transformed_metadata.schema

    def features(split, shuffle):
        """The split's transformed batches, as the Trainer reads them (`models.run_fn`)."""
        options = tfxio.TensorFlowDatasetOptions(
            batch_size=config.training.batch_size,
            shuffle=shuffle,
            shuffle_seed=seed,
            shuffle_buffer_size=config.training.shuffle_buffer_size,
            num_epochs=1,
        )
        files = [str(transformed / f"{split}-*.tfrecord")]
        return tfxio.TFExampleRecord(files, schema=schema).TensorFlowDataset(options)

    def dataset(split):
        return model_batches(features(split, shuffle=False), output)

    vocabulary = config.preprocessing.tag_vocabulary
    trained = train(
        config,
        features("train", shuffle=True),
        features("dev", shuffle=False),
        preprocessing.word_vocabulary(tf_transform_output, config),
        tf_transform_output.vocabulary_by_name(CHAR_VOCABULARY_NAME),
        callbacks=[EpochPrinter(setting, seed)],
    )
    model = trained.model
    dev_f1s = trained.history["val_entity_f1"]
    epochs = len(dev_f1s)

    def score(split, gold_beyond=0):
        data = dataset(split)
        gold_ids = np.concatenate([batch[1].numpy() for batch in data])
        lengths = (gold_ids > 0).sum(axis=1)
        outputs = model.predict(data.map(lambda inputs, *_: inputs), verbose=0)
        predicted_ids = np.asarray(predicted_tag_ids(outputs, output, lengths))
        names = np.asarray(vocabulary, dtype=object)
        gold = [list(names[ids[:n]]) for ids, n in zip(gold_ids, lengths)]
        predicted = [list(names[ids[:n]]) for ids, n in zip(predicted_ids, lengths)]
        scores = score_entities(gold, predicted, model_config.tag_scheme)
        true_positives = scores.num_true_positives
        num_predicted = true_positives + scores.num_false_positives
        num_gold = true_positives + scores.num_false_negatives + gold_beyond
        return 200.0 * true_positives / max(num_predicted + num_gold, 1)

    beyond, straddling = _gold_entities_beyond(test_sentences, config.preprocessing.max_length)
    if straddling:
        print(
            f"warning: {straddling} test entities straddle max_length; they are scored truncated",
            file=sys.stderr,
        )
    dev_f1 = score("dev")
    test_f1 = score("test", gold_beyond=beyond)
    served_test_f1 = score_served(model, tf_transform_output, config, test_sentences)
    best_epoch = int(np.argmax(dev_f1s)) + 1
    minutes = (time.monotonic() - start) / 60.0
    result = RunResult(setting, seed, test_f1, dev_f1, epochs, best_epoch, minutes, served_test_f1)
    print(f"run: {json.dumps(dataclasses.asdict(result))}", flush=True)
    return result


def score_served(model, tf_transform_output, config, sentences, batch_size: int = 256) -> float:
    """Entity F1 (percent) of `sentences` tagged as the exported model tags them: whole, however
    long, through the serving module's overlapping windows."""
    import tensorflow as tf

    from models.entity_scoring import score_entities
    from models.export import TaggerServingModule

    module = TaggerServingModule(
        model,
        tf_transform_output.transform_features_layer(),
        config.preprocessing.tag_vocabulary,
        config.model.output,
        max_length=config.preprocessing.max_length,
    )
    tag = tf.function(
        module.tag_token_lists,
        input_signature=[tf.RaggedTensorSpec([None, None], tf.string, ragged_rank=1)],
    )
    predicted = []
    for begin in range(0, len(sentences), batch_size):
        batch = [list(s.tokens) for s in sentences[begin : begin + batch_size]]
        outputs = tag(tf.ragged.constant(batch, dtype=tf.string))
        tags, lengths = outputs["tags"].numpy(), outputs["lengths"].numpy()
        predicted += [[t.decode() for t in row[:n]] for row, n in zip(tags, lengths)]
    gold = [list(s.tags) for s in sentences]
    return score_entities(gold, predicted, config.model.tag_scheme).f1


def EpochPrinter(setting: str, seed: int):  # noqa: N802 (a Callback built lazily: keras import)
    """A Keras callback printing each epoch's loss, dev F1 and duration."""
    import keras

    class _Printer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            print(
                f"  {setting} seed {seed} epoch {epoch + 1}: loss {logs.get('loss', 0):.4f} "
                f"val_loss {logs.get('val_loss', 0):.4f} dev F1 {logs.get('val_entity_f1', 0):.2f}"
                f" ({time.monotonic() - self._start:.0f} s)",
                flush=True,
            )

    return _Printer()


def table(results: list[RunResult], description: str) -> str:
    """Markdown table, one row per setting, in `SETTINGS` order."""
    lines = [
        description,
        "",
        "| setting | runs (seeds) | test F1 mean ± std | test F1 as served | dev F1 mean "
        "| epochs (best) | minutes per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting in SETTINGS:
        runs = [r for r in results if r.setting == setting]
        if not runs:
            continue
        test = [r.test_f1 for r in runs]
        std = f"{statistics.stdev(test):.2f}" if len(test) > 1 else "n/a"
        served = [r.served_test_f1 for r in runs if r.served_test_f1 is not None]
        served = f"{statistics.mean(served):.2f}" if len(served) == len(runs) else "n/a"
        lines.append(
            f"| {setting} | {len(runs)} ({', '.join(str(r.seed) for r in runs)}) "
            f"| {statistics.mean(test):.2f} ± {std} | {served} "
            f"| {statistics.mean(r.dev_f1 for r in runs):.2f} "
            f"| {statistics.mean(r.epochs for r in runs):.1f} "
            f"({statistics.mean(r.best_epoch for r in runs):.1f}) "
            f"| {statistics.mean(r.minutes for r in runs):.1f} |"
        )
    lines.append("")
    lines.append("Per run: " + "; ".join(
        f"{r.setting} seed {r.seed}: test {r.test_f1:.2f}, dev {r.dev_f1:.2f}, "
        f"{r.epochs} epochs, {r.minutes:.1f} min"
        for r in results
    ))  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override a config default, e.g. --set training.learning_rate=0.001",
    )
    parser.add_argument("--cache-dir", type=Path, default=REPO / "outputs" / "tagger_quality_cache")
    parser.add_argument("--output", type=Path, help="also write the markdown table here")
    parser.add_argument(
        "--results", type=Path, help="append each run as a JSON line here (resumable record)"
    )
    parser.add_argument(
        "--table-from",
        type=Path,
        help="train nothing: build the table from a --results file (runs without overrides)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.table_from:
        records = [json.loads(line) for line in args.table_from.read_text().splitlines() if line]
        fields = {field.name for field in dataclasses.fields(RunResult)}
        results = [
            RunResult(**{k: v for k, v in record.items() if k in fields})
            for record in records
            if record.get("set", []) == args.set
        ]
        _write(table(results, _description(args.set)), args.output)
        return

    from models.config import PreprocessingConfig, TaggerConfig

    data_dir = shared_dir()
    splits = read_splits(data_dir)
    tag_names = sorted({tag for sentence in splits["train"] for tag in sentence.tags})
    config = TaggerConfig(preprocessing=PreprocessingConfig(tag_names=tuple(tag_names)))
    config = apply_overrides(config, args.set)
    results = []
    for setting in args.settings:
        run_config = setting_config(config, setting)
        start = time.monotonic()
        transformed = transform(splits, run_config, args.cache_dir)
        print(f"transformed data in {transformed} ({time.monotonic() - start:.0f} s)", flush=True)
        for seed in args.seeds:
            result = train_and_score(run_config, setting, seed, transformed, splits["test"])
            results.append(result)
            if args.results:
                with args.results.open("a") as file:
                    file.write(json.dumps({**dataclasses.asdict(result), "set": args.set}) + "\n")
    _write(table(results, _description(args.set)), args.output)


def _description(overrides: list[str]) -> str:
    return (
        "WNUT-17 test entity F1 (conlleval, percent, complete test gold), epoch selected on the "
        "dev entity F1; config defaults of models/config.py with overrides "
        f"{overrides or 'none'}."
    )


def _write(markdown: str, output: Path | None) -> None:
    print(markdown)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(markdown)


if __name__ == "__main__":
    main()
