"""AffectSynth: the embedded procedural multi-modal affect data set (docs/affectsynth.md).

Faces whose geometry follows the 12 DISFA action units, rendered in five styles (domains); a voiced signal whose
prosody follows valence and arousal; template utterances that are sometimes neutral on purpose; emotion,
AU intensity, sentiment, valence, arousal, identity and domain labels. Seeded and byte-reproducible.
"""

from affectlab.data.synth.cache import AffectSynthArrays, AffectSynthCacheError, load
from affectlab.data.synth.config import SynthConfig
from affectlab.data.synth.faces import RENDER_STYLES
from affectlab.data.synth.generator import ensure, generate, synth_command
from affectlab.data.synth.preview import preview
from affectlab.data.synth.text import VOCAB, decode, encode

__all__ = [
    "RENDER_STYLES",
    "VOCAB",
    "AffectSynthArrays",
    "AffectSynthCacheError",
    "SynthConfig",
    "decode",
    "encode",
    "ensure",
    "generate",
    "load",
    "preview",
    "synth_command",
]
