"""Experiments: chains of ordinary runs driven in process through a typed API (``train``), the ConCluGen
recipe and ablation built on it, and their statistics and reports. Sweeps and repeats belong here too."""
