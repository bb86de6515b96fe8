"""Serving the pushed tagger: the `serve_sentences` graph pieces, the `ner-tag` CLI, Beam batch inference."""
