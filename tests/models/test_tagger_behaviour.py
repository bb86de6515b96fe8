"""Behaviour of a trained tagger: what it learned, invariance to padding and batching, valid IOB2.

A small BiLSTM-CRF is trained once (module fixture) on tiny synthetic data featurised by the
pipeline's own `preprocessing_fn` (analysed with tft_beam, applied with the saved transform graph).
The tag set is read from that data, and its entity types are made up: nothing here depends on
one corpus. The expected tags are written out by hand from the data's templates; the IOB2 check
is a plain-Python reading of the scheme's rule, independent of `linear_crf.tag_scheme`.
"""

import functools
import itertools
import random

import apache_beam as beam
import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from models import preprocessing
from models.config import ModelConfig, PreprocessingConfig, TaggerConfig, TrainingConfig
from models.tagger import build_tagger, compile_tagger, predicted_tag_ids, training_model_inputs

pytestmark = pytest.mark.slow

MAX_LENGTH = 12
MAX_WORD_LENGTH = 8

PEOPLE = [["ada", "lovelace"], ["alan", "turing"], ["grace", "hopper"], ["kurt", "godel"]]
PLACES = [["oslo"], ["lima"], ["new", "delhi"], ["cairo"]]
GADGETS = [["zorbx"], ["kwib", "nine"], ["plonk"]]


def _entity(words, entity_type):
    return list(words), [f"B-{entity_type}"] + [f"I-{entity_type}"] * (len(words) - 1)


def _sentence(*parts):
    """Concatenates (words, tags) pieces; a plain string is one token tagged O."""
    tokens, tags = [], []
    for part in parts:
        words, part_tags = ([part], ["O"]) if isinstance(part, str) else part
        tokens += words
        tags += part_tags
    return tokens, tags


def _templates(person, place, gadget):
    person, place, gadget = (
        _entity(person, "agent"),
        _entity(place, "site"),
        _entity(gadget, "device"),
    )
    return [
        _sentence(person, "flew", "to", place, "today"),
        _sentence("yesterday", person, "bought", "a", gadget),
        _sentence("the", gadget, "was", "sold", "in", place),
        _sentence("we", "met", person, "near", place, "with", "a", gadget),
    ]


# Training combinations leave some (person, place, gadget) triples out: they are the must-tag
# cases below, made of words and contexts the model saw, in combinations it did not see.
ALL_TRIPLES = list(itertools.product(range(len(PEOPLE)), range(len(PLACES)), range(len(GADGETS))))
HELD_OUT = [(0, 3, 2), (3, 0, 1), (2, 2, 0)]
TRAIN = [
    sentence
    for person, place, gadget in ALL_TRIPLES
    if (person, place, gadget) not in HELD_OUT
    for sentence in _templates(PEOPLE[person], PLACES[place], GADGETS[gadget])
]


def iob2_violations(tags):
    """Positions whose tag IOB2 forbids: I-X not preceded by B-X or I-X (independent reference)."""
    bad = []
    for index, tag in enumerate(tags):
        if tag.startswith("I-"):
            previous = tags[index - 1] if index else "O"
            if previous not in (f"B-{tag[2:]}", f"I-{tag[2:]}"):
                bad.append(index)
    return bad


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model, transform output, tag vocabulary) of a tagger trained on TRAIN."""
    directory = tmp_path_factory.mktemp("behaviour")
    tag_names = sorted({tag for _, tags in TRAIN for tag in tags})  # read from the data
    config = TaggerConfig(
        preprocessing=PreprocessingConfig(
            tag_names=tuple(tag_names),
            max_word_length=MAX_WORD_LENGTH,
            token_frequency_threshold=1,
        ),
        model=ModelConfig(
            word_embedding_dim=16,
            casing_embedding_dim=2,
            char_embedding_dim=8,
            char_filters=8,
            lstm_units=16,
            dropout=0.1,
        ),
        training=TrainingConfig(batch_size=8, learning_rate=1e-2),
    )
    raw_metadata = dataset_metadata.DatasetMetadata(
        schema_utils.schema_from_feature_spec(
            {
                preprocessing.TOKENS_KEY: tf.io.VarLenFeature(tf.string),
                preprocessing.TAGS_KEY: tf.io.VarLenFeature(tf.string),
            }
        )
    )
    rows = [
        {"tokens": [t.encode() for t in tokens], "tags": [t.encode() for t in tags]}
        for tokens, tags in TRAIN
    ]
    fn = functools.partial(preprocessing.preprocessing_fn, custom_config=config.to_custom_config())
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(directory / "tmp")):
        data = pipeline | beam.Create(rows)
        transform_fn = (data, raw_metadata) | tft_beam.AnalyzeDataset(fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(directory / "transform"))
    transform_output = tft.TFTransformOutput(str(directory / "transform"))

    features = featurise(transform_output, TRAIN)
    vocabulary = config.preprocessing.tag_vocabulary
    keras.utils.set_random_seed(0)
    model = build_tagger(
        config.model,
        tag_names=vocabulary,
        num_words=preprocessing.NUM_RESERVED_IDS
        + len(preprocessing.word_vocabulary(transform_output, config)),
        num_chars=preprocessing.NUM_RESERVED_IDS
        + transform_output.vocabulary_size_by_name(preprocessing.CHAR_VOCABULARY_NAME),
        max_word_length=MAX_WORD_LENGTH,
        seed=0,
    )
    compile_tagger(model, config.model, config.training)
    model.fit(
        training_model_inputs(features),
        features[preprocessing.TAG_IDS_KEY],
        batch_size=config.training.batch_size,
        epochs=25,
        shuffle=True,
        verbose=0,
    )
    return model, transform_output, vocabulary


def featurise(transform_output, sentences):
    """Transformed features (numpy) of (tokens, tags) pairs, through the saved transform graph."""
    tokens = tf.ragged.constant([list(t) for t, _ in sentences], dtype=tf.string)
    tags = tf.ragged.constant([list(t) for _, t in sentences], dtype=tf.string)
    transformed = transform_output.transform_raw_features(
        {preprocessing.TOKENS_KEY: tokens.to_sparse(), preprocessing.TAGS_KEY: tags.to_sparse()}
    )
    return {key: np.asarray(value) for key, value in transformed.items()}


def tag(model, transform_output, vocabulary, sentences):
    """Predicted tag names of each sentence (list of token lists), tagged as one batch."""
    features = featurise(transform_output, [(s, ["O"] * len(s)) for s in sentences])
    outputs = model(training_model_inputs(features), training=False)
    lengths = features[preprocessing.LENGTHS_KEY]
    tag_ids = np.asarray(predicted_tag_ids(outputs, "crf", lengths))
    return [[vocabulary[i] for i in ids[:n]] for ids, n in zip(tag_ids, lengths)]


def test_training_sentences_are_tagged_as_in_the_data(trained):
    sentences = random.Random(0).sample(TRAIN, 10)
    predicted = tag(*trained, [tokens for tokens, _ in sentences])
    assert predicted == [tags for _, tags in sentences]


@pytest.mark.parametrize("triple", HELD_OUT)
def test_must_tag_unseen_combinations_of_seen_entities(trained, triple):
    person, place, gadget = triple
    # Written out by hand for the first template: "<person> flew to <place> today".
    tokens = PEOPLE[person] + ["flew", "to"] + PLACES[place] + ["today"]
    expected = (
        ["B-agent"] + ["I-agent"] * (len(PEOPLE[person]) - 1)
        + ["O", "O"]
        + ["B-site"] + ["I-site"] * (len(PLACES[place]) - 1)
        + ["O"]
    )  # fmt: skip
    assert tag(*trained, [tokens]) == [expected]
    tokens = ["yesterday"] + PEOPLE[person] + ["bought", "a"] + GADGETS[gadget]
    expected = (
        ["O", "B-agent"] + ["I-agent"] * (len(PEOPLE[person]) - 1)
        + ["O", "O"]
        + ["B-device"] + ["I-device"] * (len(GADGETS[gadget]) - 1)
    )  # fmt: skip
    assert tag(*trained, [tokens]) == [expected]


def test_padding_and_batch_composition_do_not_change_tags(trained):
    sentence = ["we", "met", "alan", "turing", "near", "oslo", "with", "a", "plonk"]
    alone = tag(*trained, [sentence])[0]
    others = [
        ["oslo"],
        ["the", "zorbx", "was", "sold", "in", "new", "delhi", "and", "more", "words", "too"],
        ["yesterday", "grace", "hopper", "bought", "a", "kwib", "nine"],
    ]
    for batch in ([sentence] + others, others + [sentence], others[:1] + [sentence] + others[1:]):
        tagged = tag(*trained, batch)
        assert tagged[batch.index(sentence)] == alone
        for other, other_tags in zip(batch, tagged):
            assert len(other_tags) == len(other)


def word_salad(seed, num_sentences=200):
    """Random sentences of training words and a few unseen ones."""
    words = sorted({word for tokens, _ in TRAIN for word in tokens}) + ["unseen", "Ada", "NEW"]
    rng = random.Random(seed)
    return [
        [rng.choice(words) for _ in range(rng.randint(1, MAX_LENGTH))] for _ in range(num_sentences)
    ]


def test_decoded_tags_never_violate_iob2(trained):
    for tags in tag(*trained, word_salad(1)):
        assert iob2_violations(tags) == []


def test_constraints_hold_against_emissions_that_favour_invalid_tags(trained):
    model, transform_output, vocabulary = trained
    # The trained model with an emission bias that makes I-device the best tag of every token in
    # isolation: an I- tag at a sentence's start, or after O, is then what the emissions ask for.
    biased = keras.models.clone_model(model)
    biased.set_weights(model.get_weights())
    emissions = biased.get_layer("emissions")
    kernel, bias = emissions.get_weights()
    bias = bias.copy()
    bias[vocabulary.index("I-device")] += 20.0
    emissions.set_weights([kernel, bias])
    sentences = word_salad(2, num_sentences=50)
    features = featurise(transform_output, [(s, ["O"] * len(s)) for s in sentences])
    outputs = np.asarray(biased(training_model_inputs(features), training=False))
    lengths = features[preprocessing.LENGTHS_KEY]
    n = len(vocabulary)  # the CRF's outputs are (path, emissions, mask)
    best_alone = outputs[..., n : 2 * n].argmax(-1)
    assert all(vocabulary[i] == "I-device" for ids, n in zip(best_alone, lengths) for i in ids[:n])
    for tags in tag(biased, transform_output, vocabulary, sentences):
        assert iob2_violations(tags) == []
        assert tags[0] != "I-device"
