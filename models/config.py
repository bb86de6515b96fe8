"""Typed, frozen configuration of the tagger: preprocessing, model and training.

One dataclass per concern. The TFX pipeline passes them to Transform and Trainer as one JSON
object (`custom_config`); `TaggerConfig.from_custom_config` is the one place that turns that JSON
back into typed values and validates them, and `TaggerConfig.to_custom_config` the one place that
writes it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from linear_crf.tag_scheme import SCHEMES

__all__ = [
    "ENCODER_POOLINGS",
    "MAX_SKETCHED_VOCABULARY_SIZE",
    "ModelConfig",
    "OUTPUT_LAYERS",
    "PAD_TAG",
    "PreprocessingConfig",
    "TAG_SCHEMES",
    "tag_vocabulary",
    "TaggerConfig",
    "TrainingConfig",
]

PAD_TAG = "[PAD]"
"""Tag name of id 0: padding positions. Never a real tag; the CRF never allows it."""
MAX_SKETCHED_VOCABULARY_SIZE = 200_000
"""The largest `max_token_vocabulary_size`: TensorFlow Transform's limit for its vocabulary sketch
(`tensorflow_transform.analyzers.LARGE_VOCAB_TOP_K`)."""

OUTPUT_LAYERS = ("crf", "softmax")
ENCODER_POOLINGS = ("first", "mean")
TAG_SCHEMES = SCHEMES  # canonical names, "iob2" and "bioes": linear_crf.tag_scheme owns them


def _invalid(name: str, expected: str, received: Any) -> ValueError:
    return ValueError(
        f"Invalid value for `{name}`. Expected {expected}. Received: {name}={received!r}"
    )


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _invalid(name, "a positive integer", value)


def _check_non_negative_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(name, "a non-negative integer", value)


def _check_number(name: str, value: Any, *, positive: bool) -> None:
    """A finite real number (not a bool, NaN or infinity), > 0 if `positive`, else >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        expected = "a positive finite number" if positive else "a non-negative finite number"
        raise _invalid(name, expected, value)


def _check_fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise _invalid(name, "a number in [0, 1)", value)


@dataclasses.dataclass(frozen=True)
class PreprocessingConfig:
    """What `models.preprocessing.preprocessing_fn` does with the raw tokens and tags.

    Attributes:
        tag_names: the known tags of the data set (`O`, `B-<type>`, `I-<type>`), any order. Their
            ids are fixed by `tag_vocabulary`, never by frequency or data order.
        max_length: sentences are padded or truncated to this many tokens.
        max_word_length: tokens are padded or truncated to this many characters.
        token_frequency_threshold: a lowercased token enters the word vocabulary if it occurs at
            least this many times in the training split; rarer ones map to the OOV id.
        char_frequency_threshold: the same for characters in the character vocabulary.
        max_token_vocabulary_size: at most this many tokens in the word vocabulary, the most
            frequent ones as a bounded-memory sketch finds them; 0 (the default) for every token
            that meets `token_frequency_threshold`, counted exactly. Exact counting
            (`tft.vocabulary`) holds every distinct token of the training split at once, so
            Transform's memory grows with them (about 0.45 GB more at 1.9M distinct tokens;
            BENCHMARKS.md). N > 0 uses a Misra-Gries sketch of N counters
            (`tft.experimental.approximate_vocabulary`, N at most 200,000): memory bounded by N
            whatever the corpus, and the same vocabulary as the exact one when the split has at
            most N distinct tokens. A sketch keeps no exact counts: `token_frequency_threshold`
            must then be 1.
        pretrained_vocabulary_size: when `ModelConfig.pretrained_embeddings_path` is set, the
            first this many (lowercased, distinct) words of that vectors file, its most frequent
            ones, also join the word vocabulary, whether or not the training split has them (as
            Lample et al., 2016 do): a word first seen at serving time still gets its pretrained
            vector instead of the OOV id. 0 keeps the vocabulary to the training split's words.
            Each word costs one embedding row (`word_embedding_dim` floats) in the model.
        max_pieces_per_word: with a pretrained encoder (`ModelConfig.encoder_path`), a word's
            word pieces after the first this many are left out of the encoder's input; the
            encoder then reads at most `max_length * max_pieces_per_word + 2` pieces, which must
            fit its position embedding (512 for BERT).
    """

    tag_names: tuple[str, ...]
    max_length: int = 64
    max_word_length: int = 20
    token_frequency_threshold: int = 2
    char_frequency_threshold: int = 1
    max_token_vocabulary_size: int = 0
    pretrained_vocabulary_size: int = 400_000
    max_pieces_per_word: int = 4

    def __post_init__(self):
        if (
            isinstance(self.tag_names, str)
            or not self.tag_names
            or not all(isinstance(t, str) and t for t in self.tag_names)
        ):
            raise _invalid("tag_names", "a non-empty sequence of non-empty strings", self.tag_names)
        if PAD_TAG in self.tag_names:
            raise _invalid("tag_names", f"tags without the reserved {PAD_TAG!r}", self.tag_names)
        if len(set(self.tag_names)) != len(self.tag_names):
            raise _invalid("tag_names", "tags without duplicates", self.tag_names)
        object.__setattr__(self, "tag_names", tuple(self.tag_names))
        for name in (
            "max_length",
            "max_word_length",
            "token_frequency_threshold",
            "char_frequency_threshold",
            "max_pieces_per_word",
        ):
            _check_positive_int(name, getattr(self, name))
        _check_non_negative_int("pretrained_vocabulary_size", self.pretrained_vocabulary_size)
        _check_non_negative_int("max_token_vocabulary_size", self.max_token_vocabulary_size)
        if self.max_token_vocabulary_size > MAX_SKETCHED_VOCABULARY_SIZE:
            raise _invalid(
                "max_token_vocabulary_size",
                f"0 or at most {MAX_SKETCHED_VOCABULARY_SIZE:,} (TensorFlow Transform's limit "
                "for its sketch)",
                self.max_token_vocabulary_size,
            )
        if self.max_token_vocabulary_size and self.token_frequency_threshold != 1:
            raise _invalid(
                "token_frequency_threshold",
                "1 with max_token_vocabulary_size (its sketch ranks tokens by frequency but keeps "
                "no exact counts to compare with a threshold)",
                self.token_frequency_threshold,
            )

    @property
    def tag_vocabulary(self) -> tuple[str, ...]:
        """Tag names indexed by tag id: `[PAD]` at 0, then the known tags sorted."""
        return (PAD_TAG, *sorted(self.tag_names))

    @property
    def num_tags(self) -> int:
        """Number of tag ids, padding included."""
        return len(self.tag_names) + 1


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of the BiLSTM-CRF (Lample et al., 2016; Ma & Hovy, 2016).

    Attributes:
        word_embedding_dim: size of the word (lowercased token) embedding.
        pretrained_embeddings_path: optional GloVe-format text file (`word v1 v2 ...`, may be
            gzipped), or a folder of a `.npy` matrix and a `.parquet` word list
            (`models.embeddings`), whose vectors initialise the rows of known words; its vector
            size must equal `word_embedding_dim`.
        trainable_word_embeddings: whether the word embedding is fine-tuned.
        frozen_pretrained_channel: with pretrained vectors, also give the BiLSTM a second, frozen
            copy of them, so that words seen in training (whose fine-tuned rows drift) and words
            never seen (whose rows stay pretrained) still meet in one space (the multi-channel
            input of Aguilar et al., 2017).
        casing_embedding_dim: size of the casing-class embedding.
        char_embedding_dim: size of the character embedding of the character CNN.
        char_filters: number of convolution filters of the character CNN.
        char_kernel_size: width (in characters) of those filters.
        lstm_units: units of each direction of the BiLSTM.
        lstm_layers: stacked BiLSTM layers (each one's output, after dropout, is the next one's
            input); 0: none, the token representation goes straight to the output layer (for an
            encoder, whose vectors already carry the sentence's context).
        dropout: dropout rate on the token representation and on the BiLSTM output.
        recurrent_dropout: dropout rate on the LSTM's recurrent state, one mask per sentence
            (the variational dropout of Gal & Ghahramani, 2016); 0 turns it off.
        word_dropout: while training, the probability that a word id is replaced by the OOV id
            (`models.tagger.WordDropout`), so the model learns to tag unknown words.
        output: "crf" (linear-chain CRF) or "softmax" (per-token softmax, the ablation).
        tag_scheme: tag scheme whose forbidden transitions the CRF masks ("iob2" or "bioes").
        encoder_path: optional pretrained BERT-family encoder, a folder (or URI) in the Hugging
            Face layout (`models.encoder.checkpoint`): each word also gets the encoder's vector of
            its word pieces (`encoder_pooling`), beside the word, casing and character features.
            On the command line, `--encoder minilm` is the installed all-MiniLM-L6-v2.
        encoder_trainable: fine-tune the encoder (at `TrainingConfig.encoder_learning_rate`).
        encoder_pooling: a word's vector from its pieces' vectors: "first" (the first piece's,
            as Devlin et al., 2019 do for NER) or "mean".
    """

    word_embedding_dim: int = 50
    pretrained_embeddings_path: str | None = None
    trainable_word_embeddings: bool = True
    frozen_pretrained_channel: bool = True
    casing_embedding_dim: int = 8
    char_embedding_dim: int = 25
    char_filters: int = 100
    char_kernel_size: int = 3
    lstm_units: int = 128
    lstm_layers: int = 1
    dropout: float = 0.5
    recurrent_dropout: float = 0.0
    word_dropout: float = 0.0
    output: str = "crf"
    tag_scheme: str = "iob2"
    encoder_path: str | None = None
    encoder_trainable: bool = True
    encoder_pooling: str = "first"

    def __post_init__(self):
        for name in (
            "word_embedding_dim",
            "casing_embedding_dim",
            "char_embedding_dim",
            "char_filters",
            "char_kernel_size",
            "lstm_units",
        ):
            _check_positive_int(name, getattr(self, name))
        _check_non_negative_int("lstm_layers", self.lstm_layers)
        _check_fraction("dropout", self.dropout)
        _check_fraction("recurrent_dropout", self.recurrent_dropout)
        _check_fraction("word_dropout", self.word_dropout)
        if self.output not in OUTPUT_LAYERS:
            raise _invalid("output", f"one of {OUTPUT_LAYERS}", self.output)
        if self.tag_scheme not in TAG_SCHEMES:
            raise _invalid("tag_scheme", f"one of {TAG_SCHEMES}", self.tag_scheme)
        if self.pretrained_embeddings_path is not None and not (
            isinstance(self.pretrained_embeddings_path, str) and self.pretrained_embeddings_path
        ):
            raise _invalid(
                "pretrained_embeddings_path", "None or a file path", self.pretrained_embeddings_path
            )
        if self.encoder_path is not None and not (
            isinstance(self.encoder_path, str) and self.encoder_path
        ):
            raise _invalid("encoder_path", "None or a folder path", self.encoder_path)
        if not isinstance(self.encoder_trainable, bool):
            raise _invalid("encoder_trainable", "true or false", self.encoder_trainable)
        if self.encoder_pooling not in ENCODER_POOLINGS:
            raise _invalid("encoder_pooling", f"one of {ENCODER_POOLINGS}", self.encoder_pooling)


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How the Trainer fits the model.

    The defaults (and those of `ModelConfig`, `PreprocessingConfig`) are the best measured on
    WNUT-17 (benchmarks/tagger_quality.py, BENCHMARKS.md).

    Attributes:
        batch_size: sentences per training step.
        epochs: maximum number of passes over the training split.
        learning_rate: Adam learning rate (of the first epoch).
        learning_rate_decay: the learning rate of epoch e (from 0) is
            `learning_rate / (1 + learning_rate_decay * e)` (Ma & Hovy, 2016); 0 keeps it constant.
        clipnorm: gradients are clipped to this global norm (Pascanu et al., 2013).
        weight_averaging: 0 trains and keeps the raw weights. Otherwise the momentum of an
            exponential moving average of the weights, updated after every step (Polyak
            averaging, `keras.optimizers.Adam(use_ema=True)`): the eval F1, early stopping and
            the kept model all use the averaged weights. 0.99 averages over about 100 steps.
        early_stopping_patience: epochs without improvement of the entity F1 on the eval split
            before training stops; the best epoch's weights are kept.
        early_stopping_start_epoch: epochs trained before early stopping starts watching (the
            F1 stays at 0 for the first epochs, while the model still predicts only "O").
        shuffle_buffer_size: sentences in the shuffle buffer of the training split.
        seed: seed of weight initialisation and shuffling.
        encoder_epochs: with a pretrained encoder (`ModelConfig.encoder_path`), at most this many
            epochs (and no more than `epochs`), early stopping watching from the first one: a
            fine-tuned encoder converges in a few epochs (Devlin et al., 2019, use 2 to 4) and
            its F1 means something from the first.
        encoder_learning_rate: with a fine-tuned encoder (`ModelConfig.encoder_trainable`),
            its Adam learning rate (`models.encoder.bert_encoder.BertEncoder`'s
            `learning_rate_multiplier` makes it so); the rest of the model trains at
            `learning_rate`.
        jit_compile: compile the train, eval and predict steps with XLA
            (`keras.Model.compile(jit_compile=...)`); off by default on CPU, as measured
            (BENCHMARKS.md, "Training step: graph or XLA").
        cache_encoder_vectors: with a frozen encoder (`ModelConfig.encoder_trainable` false),
            run it once over each split and keep its word vectors in temporary files for the
            later epochs (`models.frozen_encoder`: 1.5 KB a word with 384 dimensions, about
            100 MB for WNUT-17, 30 GB for a million 20-word sentences); false runs it every
            epoch instead, for disks that cannot hold them.
    """

    batch_size: int = 32
    epochs: int = 25
    learning_rate: float = 3e-3
    learning_rate_decay: float = 0.0
    clipnorm: float = 5.0
    weight_averaging: float = 0.0
    early_stopping_patience: int = 5
    early_stopping_start_epoch: int = 3
    shuffle_buffer_size: int = 4096
    seed: int = 42
    encoder_epochs: int = 4
    encoder_learning_rate: float = 1e-4
    jit_compile: bool = False
    cache_encoder_vectors: bool = True

    def __post_init__(self):
        for name in (
            "batch_size",
            "epochs",
            "early_stopping_patience",
            "shuffle_buffer_size",
            "encoder_epochs",
        ):
            _check_positive_int(name, getattr(self, name))
        _check_non_negative_int("early_stopping_start_epoch", self.early_stopping_start_epoch)
        _check_number("learning_rate_decay", self.learning_rate_decay, positive=False)
        for name in ("learning_rate", "clipnorm", "encoder_learning_rate"):
            _check_number(name, getattr(self, name), positive=True)
        _check_fraction("weight_averaging", self.weight_averaging)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise _invalid("seed", "an integer", self.seed)
        for name in ("jit_compile", "cache_encoder_vectors"):
            if not isinstance(getattr(self, name), bool):
                raise _invalid(name, "true or false", getattr(self, name))


_SECTIONS = {
    "preprocessing": PreprocessingConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
}


def _from_mapping(cls: type, section: str, values: Mapping[str, Any]) -> Any:
    if not isinstance(values, Mapping):
        raise _invalid(f"custom_config[{section!r}]", "a JSON object", values)
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise _invalid(f"custom_config[{section!r}]", f"keys among {sorted(known)}", dict(values))
    return cls(**values)


@dataclasses.dataclass(frozen=True)
class TaggerConfig:
    """Everything Transform and Trainer need, passed to both as one `custom_config`."""

    preprocessing: PreprocessingConfig
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()

    def to_custom_config(self) -> dict[str, Any]:
        """The JSON-serialisable dict given to the TFX components as `custom_config`."""
        return {"tagger": dataclasses.asdict(self)}

    def transform_custom_config(self) -> dict[str, Any]:
        """`custom_config` holding only what preprocessing reads (the preprocessing settings, the
        tag scheme and the vectors file); read back, the other settings are the defaults. Given
        to Transform, so that a model or training setting does not change its cache key."""
        return {
            "tagger": {
                "preprocessing": dataclasses.asdict(self.preprocessing),
                "model": {
                    "tag_scheme": self.model.tag_scheme,
                    "pretrained_embeddings_path": self.model.pretrained_embeddings_path,
                    "encoder_path": self.model.encoder_path,
                },
            }
        }

    @property
    def epochs(self) -> int:
        """Most epochs the Trainer trains (`TrainingConfig.encoder_epochs` with an encoder)."""
        if self.model.encoder_path is None:
            return self.training.epochs
        return min(self.training.epochs, self.training.encoder_epochs)

    @property
    def early_stopping_start_epoch(self) -> int:
        """Epochs before early stopping watches (0 with an encoder)."""
        return (
            0 if self.model.encoder_path is not None else self.training.early_stopping_start_epoch
        )

    @classmethod
    def from_custom_config(cls, custom_config: Mapping[str, Any] | str | None) -> TaggerConfig:
        """Builds the typed configuration from a component's `custom_config` (dict or JSON).

        Raises:
            ValueError: if the `tagger` entry is missing or holds unknown keys or bad values.
        """
        if isinstance(custom_config, str):
            custom_config = json.loads(custom_config)
        if not isinstance(custom_config, Mapping) or "tagger" not in custom_config:
            raise _invalid("custom_config", "a mapping with a 'tagger' entry", custom_config)
        tagger = custom_config["tagger"]
        if not isinstance(tagger, Mapping) or "preprocessing" not in tagger:
            raise _invalid(
                "custom_config['tagger']", "a mapping with a 'preprocessing' entry", tagger
            )
        unknown = sorted(set(tagger) - set(_SECTIONS))
        if unknown:
            raise _invalid("custom_config['tagger']", f"keys among {sorted(_SECTIONS)}", tagger)
        sections = {
            name: _from_mapping(section_cls, name, tagger.get(name, {}))
            for name, section_cls in _SECTIONS.items()
        }
        return cls(**sections)


def tag_vocabulary(tag_names: Sequence[str]) -> tuple[str, ...]:
    """Tag names indexed by tag id for a set of known tags: `[PAD]` at 0, then sorted."""
    return PreprocessingConfig(tag_names=tuple(tag_names)).tag_vocabulary
