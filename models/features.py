"""Every name that the data, the model and the served SavedModel agree on, spelled once.

Dependency-free on purpose: the ExampleGen, the Transform, the Trainer, the export, the
Evaluator, `serving/` and the report all import their names from here, and none of them has to
import another's machinery to learn a string.

Raw features: the tf.Examples of `components.conll_example_gen`, one per sentence.
Transformed features: `models.preprocessing.preprocessing_fn`'s outputs, the model's inputs.
Signatures: those of the SavedModel `models.export` writes; all three tag a sentence the same way
(whole, through overlapping windows past `max_length`) and return the same outputs.
"""

from __future__ import annotations

__all__ = [
    "CASINGS",
    "CASING_IDS_KEY",
    "CHAR_IDS_KEY",
    "CHAR_VOCABULARY_NAME",
    "ENCODER_INPUT_KEYS",
    "ENCODER_VECTORS_KEY",
    "EXAMPLES_INPUT",
    "EXAMPLES_SIGNATURE",
    "LENGTHS_KEY",
    "MODEL_INPUT_KEYS",
    "NUM_RESERVED_IDS",
    "OOV_ID",
    "OUTPUT_KEYS",
    "PAD_ID",
    "PIECE_IDS_KEY",
    "SENTENCES_INPUT",
    "SENTENCES_SIGNATURE",
    "SENTENCE_ID_KEY",
    "SIGNATURES",
    "TAGS_KEY",
    "TAG_IDS_KEY",
    "TOKENS_INPUT",
    "TOKENS_KEY",
    "TOKENS_SIGNATURE",
    "TOKEN_IDS_KEY",
    "TOKEN_VOCABULARY_NAME",
    "WORD_PIECES_KEY",
]

# Raw features (bytes lists of the same length per sentence; `tags` absent at serving time).
TOKENS_KEY = "tokens"
TAGS_KEY = "tags"
SENTENCE_ID_KEY = "sentence_id"
"""`<file>:<line>` of the sentence's first token: where a bad sentence is reported."""

# Transformed features.
TOKEN_IDS_KEY = "token_ids"
CASING_IDS_KEY = "casing_ids"
CHAR_IDS_KEY = "char_ids"
LENGTHS_KEY = "lengths"
TAG_IDS_KEY = "tag_ids"
MODEL_INPUT_KEYS = (TOKEN_IDS_KEY, CASING_IDS_KEY, CHAR_IDS_KEY)
"""The transformed features the network reads (`models.tagger.build_tagger`'s inputs)."""
# With a pretrained encoder (`ModelConfig.encoder_path`), also these two.
PIECE_IDS_KEY = "piece_ids"
"""int64 `(batch_size, max_pieces)`: [CLS], the word pieces of the sentence's words, [SEP], 0."""
WORD_PIECES_KEY = "word_pieces"
"""int64 `(batch_size, max_length, max_pieces_per_word)`: positions in `piece_ids` of each word's
pieces (from 1: [CLS] is at 0), 0 at padding."""
ENCODER_INPUT_KEYS = (PIECE_IDS_KEY, WORD_PIECES_KEY)
ENCODER_VECTORS_KEY = "encoder_vectors"
"""float32 `(batch_size, length, hidden_dim)`: each word's vector from a frozen encoder, computed
once before training (`models.frozen_encoder`); a training input only, never a served one."""

CASINGS = ("[PAD]", "lower", "upper", "title", "mixed", "digit", "punct", "other")
"""Casing classes indexed by casing id, decided in this order:

- digit: every character is a number (`\\p{N}`), e.g. "2017";
- punct: every character is punctuation or a symbol (`\\p{P}`, `\\p{S}`), e.g. "...", "@", ":)";
- lower: has a lowercase letter and no uppercase letter, e.g. "the", "@paulwalk", "don't";
- title: its first letter is uppercase and no other letter is, e.g. "Paris", "I", "#Trump";
- upper: no lowercase letter and at least two uppercase letters, e.g. "NASA", "U.S.";
- mixed: both lowercase and uppercase letters otherwise, e.g. "iPhone", "McDonald";
- other: anything else (no cased letter, e.g. "東京", or letters mixed with emoji).
"""

# Vocabularies of the Transform output.
TOKEN_VOCABULARY_NAME = "token_vocabulary"
CHAR_VOCABULARY_NAME = "char_vocabulary"
PAD_ID = 0
OOV_ID = 1
NUM_RESERVED_IDS = 2
"""Ids below this in the token and character vocabularies: padding (0) and OOV (1)."""

# Signatures of the exported SavedModel and the name of each one's input.
EXAMPLES_SIGNATURE = "serving_default"
"""Serialized tf.Examples with a `tokens` bytes list (TFX's and TF Serving's convention)."""
EXAMPLES_INPUT = "examples"
TOKENS_SIGNATURE = "serve_tokens"
"""Token strings `(batch_size, None)`, right-padded with ""."""
TOKENS_INPUT = "tokens"
SENTENCES_SIGNATURE = "serve_sentences"
"""Raw sentences `(batch_size,)`, tokenised inside the model (`models.tokenization`)."""
SENTENCES_INPUT = "sentences"
SIGNATURES = (EXAMPLES_SIGNATURE, TOKENS_SIGNATURE, SENTENCES_SIGNATURE)

OUTPUT_KEYS = (
    "tokens",
    "tags",
    "tag_ids",
    "confidences",
    "lengths",
    "entity_starts",
    "entity_ends",
    "entity_types",
    "entity_texts",
    "entity_confidences",
    "num_entities",
)
"""Outputs of every signature (`models.export.TaggerServingModule.tag_token_lists`)."""
