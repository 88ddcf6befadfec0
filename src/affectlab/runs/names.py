"""Human-readable run names: ``<model>-<data>-<adjective>-<animal>``, easy to say and to grep."""

from __future__ import annotations

import random

ADJECTIVES = (
    "able", "amber", "bold", "brave", "brisk", "calm", "clever", "crisp", "daring", "eager", "fair", "fond",
    "gentle", "glad", "grand", "happy", "honest", "jolly", "keen", "kind", "lively", "lucky", "merry", "mellow",
    "nimble", "noble", "plucky", "polite", "proud", "quick", "quiet", "rapid", "ready", "shiny", "smart",
    "steady", "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "zesty",
)
ANIMALS = (
    "badger", "beaver", "bison", "crane", "curlew", "dolphin", "eagle", "ferret", "finch", "fox", "gecko",
    "heron", "ibex", "jackal", "koala", "lemur", "lynx", "magpie", "marten", "mole", "newt", "ocelot", "otter",
    "owl", "panda", "puffin", "quail", "raven", "robin", "salmon", "seal", "shrew", "stoat", "swan", "tapir",
    "tern", "toad", "walrus", "weasel", "wombat", "wren", "yak", "zebra",
)


def _short(class_name: str) -> str:
    """``SupervisedClassifier`` -> ``supervised``, ``AffectSynthDataModule`` -> ``affectsynth``."""
    for suffix in ("DataModule", "Classifier", "Method", "Module"):
        if class_name.endswith(suffix) and len(class_name) > len(suffix):
            class_name = class_name[: -len(suffix)]
    return class_name.lower()


def run_name(*parts: str, rng: random.Random | None = None) -> str:
    """Join the non-empty ``parts`` (e.g. model and data class names) with an adjective and an animal.

    The default ``rng`` is a fresh ``random.Random()`` seeded from the OS, independent of the experiment seed,
    so names differ between runs that share a seed.
    """
    rng = rng or random.Random()
    words = [_short(p) for p in parts if p] + [rng.choice(ADJECTIVES), rng.choice(ANIMALS)]
    return "-".join(words)
