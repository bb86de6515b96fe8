"""Custom TFX components (one per file), their logic in plain functions."""
