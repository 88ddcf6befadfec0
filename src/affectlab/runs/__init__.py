"""Runs: the MLflow run store and a run's lifecycle in it, ``AffectLabCLI`` (one run: parse, build, run the
command chain), evaluations, checkpoint I/O, determinism, environment capture, a run's model rebuilt."""
