"""The tag set from the data (pipeline/learned_tags.py): the first pass over the files, its errors,
the schema it writes; and a real run on a corpus with tags of its own."""

import gzip
import os
import random
import subprocess
import sys

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from components.schema_tags import known_tags
from pipeline.config import DEFAULT_SCHEMA_PATH, REPOSITORY_ROOT, PipelineConfig
from pipeline.learned_tags import check_data, learned_config, split_files

TRAIN = b"Take\tO\naspirin\tB-drug\ndaily\tO\n\nJohn\tB-patient\nSmith\tI-patient\nrests\tO\n\n"
EVAL = b"Take\tO\nibuprofen\tB-drug\n\n"


def config_for(data_dir, *flags):
    argv = ["--data-dir", str(data_dir), "--output-dir", str(data_dir.parent / "out"), *flags]
    return PipelineConfig.from_args(argv, environ={})


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_the_tag_set_is_learned_from_the_training_files(tmp_path):
    write(tmp_path / "data" / "train.conll", TRAIN)
    write(tmp_path / "data" / "eval.conll", EVAL)
    config = config_for(tmp_path / "data")
    assert config.learn_tags
    data = check_data(config)
    # Every IOB2 tag of each type seen (drug was only ever B-), O first.
    assert data.tags == ("O", "B-drug", "I-drug", "B-patient", "I-patient")
    assert data.sentences == {"train": 2, "eval": 1}

    learned = learned_config(config, data.tags)
    assert learned.tagger.preprocessing.tag_names == data.tags
    schema = schema_pb2.Schema()
    with open(learned.schema_path, encoding="utf-8") as file:
        text_format.Parse(file.read(), schema)
    assert known_tags(schema) == data.tags
    # The rest of the schema is the template's; the file is named by its content.
    with open(DEFAULT_SCHEMA_PATH, encoding="utf-8") as file:
        template = text_format.Parse(file.read(), schema_pb2.Schema())
    assert [f.name for f in schema.feature] == [f.name for f in template.feature]
    assert learned_config(config, data.tags).schema_path == learned.schema_path
    assert learned_config(config, data.tags[:3]).schema_path != learned.schema_path


def test_an_eval_tag_the_training_data_lacks_stops_the_run_naming_file_and_line(tmp_path):
    write(tmp_path / "data" / "train.conll", TRAIN)
    write(tmp_path / "data" / "eval.conll", b"Take\tO\nibuprofen\tB-dose\n\n")
    with pytest.raises(
        ValueError, match=r"eval.conll:2: tag 'B-dose' does not occur in the training data .*drug, patient"
    ):  # fmt: skip
        check_data(config_for(tmp_path / "data"))


def test_a_curated_schema_pins_the_tag_set(tmp_path):
    write(tmp_path / "data" / "train.conll", TRAIN)
    write(tmp_path / "data" / "eval.conll", EVAL)
    config = config_for(tmp_path / "data", "--schema", DEFAULT_SCHEMA_PATH)
    assert not config.learn_tags
    with pytest.raises(
        ValueError, match=r"train.conll:2: tag 'B-drug' is not in the tag set of the schema"
    ):
        check_data(config)


def test_bad_lines_and_gzip_as_the_pipeline_reads_them(tmp_path):
    write(tmp_path / "data" / "train.conll.gz", gzip.compress(TRAIN + b"x\tB-drug\textra\n\n"))
    write(tmp_path / "data" / "eval.conll", EVAL)
    flags = ("--train-pattern", "train.conll.gz")
    with pytest.raises(ValueError, match=r"train.conll.gz:9: expected 2 columns"):
        check_data(config_for(tmp_path / "data", *flags))
    skipped = check_data(config_for(tmp_path / "data", *flags, "--on-bad-lines", "skip"))
    assert skipped.sentences["train"] == 2


def test_the_first_pass_reads_the_encoding_given(tmp_path):
    write(tmp_path / "data" / "train.conll", TRAIN + "Zoë\tB-patient\n\n".encode("cp1252"))
    write(tmp_path / "data" / "eval.conll", EVAL)
    with pytest.raises(ValueError, match=r"train.conll:\d+: invalid UTF-8 .*likely in cp1252"):
        check_data(config_for(tmp_path / "data"))
    data = check_data(config_for(tmp_path / "data", "--encoding", "cp1252"))
    assert data.sentences["train"] == 3


def test_files_of_the_newest_spans_and_a_pattern_without_files(tmp_path):
    for span in (1, 2, 10):
        write(tmp_path / "data" / f"span-{span}" / "train.conll", TRAIN)
    data = tmp_path / "data"
    assert split_files(str(data), "span-{SPAN}/train.conll") == [
        str(data / "span-10" / "train.conll")
    ]
    assert split_files(str(data), "span-{SPAN}/train.conll", spans=2) == [
        str(data / "span-2" / "train.conll"),
        str(data / "span-10" / "train.conll"),
    ]
    assert len(split_files(str(data), "span-{SPAN}/train.conll", spans=None)) == 3
    with pytest.raises(ValueError, match=r"'dev\*.conll'.*no file in"):
        split_files(str(data), "dev*.conll")


DRUGS = ["aspirin", "ibuprofen", "insulin", "metformin", "warfarin"]
PATIENTS = ["Ana", "Bob", "Chen", "Dee"]
TEMPLATES = ["{P} takes {D} daily .", "give {D} to {P} now .", "{P} stopped {D} .", "no change ."]


def sentences(rng, count):
    lines = []
    for _ in range(count):
        for word in rng.choice(TEMPLATES).split():
            if word == "{P}":
                lines.append(f"{rng.choice(PATIENTS)}\tB-patient")
            elif word == "{D}":
                lines.append(f"{rng.choice(DRUGS)}\tB-drug")
            else:
                lines.append(f"{word}\tO")
        lines.append("")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.e2e
@pytest.mark.slow
def test_a_run_on_a_corpus_with_its_own_tags(tmp_path):
    """`python -m pipeline.local_runner` on drug/patient data, nothing but flags: it learns the
    tags, passes validation (the bundled schema's WNUT-17 tags would stop it at B-drug), trains,
    blesses and pushes a model that finds the new types."""
    rng = random.Random(3)
    write(tmp_path / "data" / "train.conll", sentences(rng, 120))
    write(tmp_path / "data" / "eval.conll", sentences(rng, 30))
    flags = [
        "--data-dir", str(tmp_path / "data"), "--output-dir", str(tmp_path / "out"),
        "--no-embeddings", "--max-length", "12", "--max-word-length", "10",
        "--word-embedding-dim", "16", "--lstm-units", "16", "--char-filters", "8",
        "--epochs", "8", "--learning-rate", "0.03", "--batch-size", "8",
        "--token-frequency-threshold", "1", "--min-entity-f1", "30",
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": REPOSITORY_ROOT}
    run = subprocess.run(
        [sys.executable, "-m", "pipeline.local_runner", *flags],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "tag set learned from the training data: O, B-drug, I-drug, B-patient, I-patient" in (
        run.stderr
    )
    assert "Model pushed to" in run.stdout, run.stdout
    tagged = subprocess.run(
        [sys.executable, "-m", "serving.cli", "--serving-dir",
         str(tmp_path / "out" / "serving_model" / "ner_bilstm_crf"), "Bob takes insulin daily ."],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert tagged.returncode == 0, tagged.stderr[-2000:]
    # e.g. "[Bob](patient 1.00) takes [insulin](drug 1.00) daily ."
    assert "[Bob](patient" in tagged.stdout and "[insulin](drug" in tagged.stdout, tagged.stdout
    # TensorFlow's duplicate CUDA registration lines (models.quiet_tensorflow) are not shown.
    assert "register factory" not in run.stderr + tagged.stderr


def test_older_spans_add_their_types_and_a_bad_old_span_does_not_stop_the_run(tmp_path):
    data = tmp_path / "data"
    write(data / "span-1" / "train.conll", TRAIN + b"x\tB-drug\textra\n\n")  # drug, patient, bad
    write(data / "span-2" / "train.conll", b"Ana\tB-patient\nrests\tO\n\n")
    write(data / "span-2" / "eval.conll", b"Ana\tB-patient\n\n")
    flags = (
        "--train-pattern",
        "span-{SPAN}/train.conll",
        "--eval-pattern",
        "span-{SPAN}/eval.conll",
    )
    found = check_data(config_for(data, *flags))
    assert found.tags == ("O", "B-drug", "I-drug", "B-patient", "I-patient")
    assert found.train_files == (str(data / "span-2" / "train.conll"),)
    assert found.sentences == {"train": 1, "eval": 1}
    # The newest span itself is read strictly, as the run reads it.
    write(data / "span-3" / "train.conll", b"x\tB-drug\textra\n\n")
    write(data / "span-3" / "eval.conll", b"Ana\tB-patient\n\n")
    with pytest.raises(ValueError, match=r"span-3/train.conll:1: invalid tag"):
        check_data(config_for(data, *flags))
