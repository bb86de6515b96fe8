"""Installable package of the NER pipeline: `models`, `components`, `pipeline`, `kubeflow`,
`serving`, and the CRF package `linear_crf` (from `models/crf/`).

Ranges here say what the code works with; `requirements/main.lock` pins the exact stack that
`make run` / `make test` install (resolving `apache-beam[gcp]` with pip alone takes over 20 min).
"""

from setuptools import find_packages, setup

setup(
    name="tfx-ner",
    version="0.1.0",
    description="BiLSTM-CRF sequence taggers (named-entity recognition) with Keras 3, trained and "
    "shipped by a TensorFlow Extended pipeline.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9,<3.11",
    packages=find_packages(
        include=[
            "models",
            "models.*",
            "components",
            "components.*",
            "pipeline",
            "pipeline.*",
            "kubeflow",
            "kubeflow.*",
            "serving",
            "serving.*",
        ]
    )
    # The CRF, also installable alone (`pip install ./models/crf`, models/crf/pyproject.toml).
    + ["linear_crf"],
    package_dir={"linear_crf": "models/crf/linear_crf"},
    install_requires=[
        "tfx[kfp]>=1.16,<1.17",
        "tensorflow>=2.16,<2.17",
        "tensorflow-transform>=1.16,<1.17",
        "tensorflow-model-analysis>=0.47,<0.48",
        "tensorflow-data-validation>=1.16,<1.17",
        "keras>=3.3,<3.7",
        "dill",
        "google-crc32c",  # ConllExampleGen frames its TFRecords itself.
        "matplotlib>=3.7",
        "tqdm>=4.60",
    ],
    entry_points={
        "console_scripts": ["ner-tag = serving.cli:main", "ner-eval = serving.evaluate:main"]
    },
    extras_require={"test": ["pytest>=7", "pytest-xdist", "ruff"]},
)
