"""Keras 3 CRF layer, the BiLSTM-CRF tagger, preprocessing and the Trainer run_fn."""
