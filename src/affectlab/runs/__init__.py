"""Runs: the MLflow run store, checkpoint I/O, determinism, environment capture."""
