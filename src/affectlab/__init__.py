"""AffectLab: train, evaluate and ship models of human affect from video, audio, text and pose.

Layers, each importing only from the ones above it in this list:
``data`` -> ``nn`` -> ``losses`` / ``metrics`` -> ``methods`` -> ``runs`` -> ``cli``.
See docs/architecture.md.
"""

__version__ = "0.1.0"
