"""Training methods: one LightningModule per method, composed from encoders, heads and losses by config."""

from affectlab.methods.base import BaseMethod
from affectlab.methods.supervised import SupervisedClassifier

__all__ = ["BaseMethod", "SupervisedClassifier"]
