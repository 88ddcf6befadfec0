"""Training methods: one LightningModule per method, composed from encoders, heads and losses by config."""

from affectlab.methods.au import AUModel
from affectlab.methods.base import BaseMethod, MultimodalMethod
from affectlab.methods.clup import CluP
from affectlab.methods.conclugen import ConCluGen
from affectlab.methods.fixmatch import FixMatchAU
from affectlab.methods.miro import MiroAU
from affectlab.methods.multitask import MultiTaskMethod
from affectlab.methods.pose2text import Pose2Text
from affectlab.methods.probe import LinearProbe
from affectlab.methods.shot import SHOT
from affectlab.methods.simclr import SimCLR
from affectlab.methods.supervised import SupervisedClassifier
from affectlab.methods.swav import SwAV

__all__ = ["AUModel", "BaseMethod", "CluP", "ConCluGen", "FixMatchAU", "MiroAU", "MultiTaskMethod", "MultimodalMethod",
           "Pose2Text", "SHOT", "SimCLR", "LinearProbe", "SupervisedClassifier", "SwAV"]
