"""Encoders per modality, built by name through the registry or by class path from a config."""

from affectlab.nn.encoders.audio import AudioConvEncoder
from affectlab.nn.encoders.base import Encoder, create_encoder, list_encoders, register_encoder
from affectlab.nn.encoders.features import FeatureSequenceEncoder, PrecomputedFeatures
from affectlab.nn.encoders.frames import FrameEncoder, StageEncoder
from affectlab.nn.encoders.text import TextTransformerEncoder

__all__ = [
    "AudioConvEncoder",
    "Encoder",
    "FeatureSequenceEncoder",
    "FrameEncoder",
    "PrecomputedFeatures",
    "StageEncoder",
    "TextTransformerEncoder",
    "create_encoder",
    "list_encoders",
    "register_encoder",
]
