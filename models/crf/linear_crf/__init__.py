"""linear_crf: a linear-chain conditional random field for Keras 3, on every backend.

    from linear_crf import CRF

    crf = CRF(num_tags, tag_names=names, tag_scheme="iob2")
    model = keras.Sequential([..., keras.layers.Dense(num_tags), crf])
    model.compile(optimizer="adam", loss=crf.loss)
    model.fit(x, tag_ids)
    tag_ids = np.argmax(model.predict(x), axis=-1)  # the Viterbi paths

The layer and loss are in `linear_crf.crf` with the pure functions (`log_likelihood`,
`viterbi_decode`, `marginals`, ...); the IOB2/BIOES transition constraints in
`linear_crf.tag_scheme`. Needs only `keras>=3` and one backend (TensorFlow, JAX or torch).
"""

from linear_crf.tag_scheme import allowed_transitions as allowed_transitions  # NumPy only

# The layer, its loss and the pure functions import Keras (and its backend, seconds to load), so
# they load on first use: `import linear_crf.tag_scheme` stays light for tools that only parse
# tags. A `.keras` file needs no import at all: Keras imports `linear_crf.crf` from the module
# path saved in the file, which registers the classes.
_FROM_CRF = (
    "CRF",
    "CRFLoss",
    "compiled_in_graph",
    "decoding_in_parts",
    "log_likelihood",
    "log_partition",
    "marginals",
    "nbest_viterbi_decode",
    "sequence_score",
    "viterbi_decode",
)


def __getattr__(name: str):
    if name in _FROM_CRF:
        from linear_crf import crf

        return getattr(crf, name)
    raise AttributeError(f"module 'linear_crf' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_FROM_CRF])


__all__ = sorted([*_FROM_CRF, "allowed_transitions"])
__version__ = "0.4.0"
