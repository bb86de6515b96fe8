"""The TFX pipeline: config, create_pipeline and the local runner."""
