"""Training methods: one LightningModule per method, composed from encoders, heads and losses by config."""

from affectlab.methods.au import AUModel
from affectlab.methods.base import BaseMethod, MultimodalMethod
from affectlab.methods.conclugen import ConCluGen
from affectlab.methods.fixmatch import FixMatchAU
from affectlab.methods.miro import MiroAU
from affectlab.methods.multitask import MultiTaskMethod
from affectlab.methods.probe import LinearProbe
from affectlab.methods.simclr import SimCLR
from affectlab.methods.supervised import SupervisedClassifier

__all__ = ["AUModel", "BaseMethod", "ConCluGen", "FixMatchAU", "MiroAU", "MultiTaskMethod", "MultimodalMethod", "SimCLR", "LinearProbe", "SupervisedClassifier"]
