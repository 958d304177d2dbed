"""Classifiers: models that score uploads (embeddings, a model trained on moderators' decisions, hosted models)."""
