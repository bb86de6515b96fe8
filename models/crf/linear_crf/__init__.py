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

from linear_crf.crf import (
    CRF,
    CRFLoss,
    log_likelihood,
    log_partition,
    marginals,
    nbest_viterbi_decode,
    sequence_score,
    viterbi_decode,
)
from linear_crf.tag_scheme import allowed_transitions

__all__ = [
    "CRF",
    "CRFLoss",
    "allowed_transitions",
    "log_likelihood",
    "log_partition",
    "marginals",
    "nbest_viterbi_decode",
    "sequence_score",
    "viterbi_decode",
]
__version__ = "0.2.0"
