"""The same pipeline compiled for Kubeflow Pipelines, and scheduled retraining."""
