"""Partial labels on AffectSynth: each train clip carries the labels of its group only (exact shares, seeded),
sentiment where the clip keeps its transcript, clips without one served without text; val and test keep all."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_DATA

from affectlab.data.synth.datamodule import SYNTH_TASKS, AffectSynthDataModule
from affectlab.data.synth.partial_labels import assign_partial_labels
from affectlab.errors import ConfigError

GROUPS = [{"tasks": ["emotion"], "share": 0.5}, {"tasks": ["au", "au_intensity"], "share": 0.3},
          {"tasks": ["emotion", "au", "au_intensity"], "share": 0.2}]


def test_each_clip_carries_its_group_s_labels_in_exact_shares():
    labels = assign_partial_labels({"groups": GROUPS, "text_fraction": 0.6, "seed": 1}, 100, SYNTH_TASKS)
    emotion, au, intensity = labels.masks["emotion"], labels.masks["au"], labels.masks["au_intensity"]
    assert (emotion & ~au).sum() == 50 and (au & ~emotion).sum() == 30 and (emotion & au).sum() == 20
    assert (au == intensity).all() and (emotion | au).all()
    assert labels.has_text.sum() == 60 and (labels.masks["sentiment"] == labels.has_text).all()
    again = assign_partial_labels({"groups": GROUPS, "text_fraction": 0.6, "seed": 1}, 100, SYNTH_TASKS)
    assert all((again.masks[t] == labels.masks[t]).all() for t in SYNTH_TASKS)
    other = assign_partial_labels({"groups": GROUPS, "text_fraction": 0.6, "seed": 2}, 100, SYNTH_TASKS)
    assert not (other.masks["emotion"] == emotion).all()
    # Shares that leave clips out: those carry none of the grouped tasks.
    some = assign_partial_labels({"groups": [{"tasks": ["emotion"], "share": 0.25}], "sentiment_from_text": False}, 8, SYNTH_TASKS)
    assert some.counts() == {"emotion": 2, "au": 0, "au_intensity": 0, "sentiment": 0, "text": 8}


def test_the_data_module_serves_the_masks_and_withholds_text(tiny_data):
    data = AffectSynthDataModule(root=str(tiny_data), **TINY_DATA,
                                 partial_labels={"groups": GROUPS, "text_fraction": 0.5, "seed": 0})
    data.setup()
    train = data.dataset("train")
    masks = {task: np.array([train[i]["target_mask"][task] for i in range(len(train))]) for task in SYNTH_TASKS}
    for task in SYNTH_TASKS:
        np.testing.assert_array_equal(masks[task], data.partial.masks[task])
    withheld = [train[i] for i in range(len(train)) if not data.partial.has_text[i]]
    assert withheld and all(not s["text"].any() and not s["text_mask"].any() for s in withheld)
    kept = [train[i] for i in range(len(train)) if data.partial.has_text[i]]
    assert all(s["text_mask"].any() for s in kept)
    emotion = np.asarray(data.arrays.emotion)[data.splits["train"][data.partial.masks["emotion"]]]
    assert data.class_counts("emotion").tolist() == np.bincount(emotion, minlength=7).tolist()  # labelled clips only
    assert int(data.class_counts("au").sum(dim=1)[0]) == int(data.partial.masks["au"].sum())
    for split in ("val", "test"):
        batch = next(iter(getattr(data, f"{split}_dataloader")()))
        assert all(bool(batch["target_mask"][task].all()) for task in SYNTH_TASKS)
        assert bool(batch["text_mask"].any(dim=1).all())


@pytest.mark.parametrize(("config", "message"), [
    ({"groups": [{"tasks": ["emotion", "valence"], "share": 0.5}]},
     r"groups\[0\].tasks: \['emotion', 'valence'\] names \['valence'\]"),
    ({"groups": [{"tasks": ["emotion"], "share": 0.7}, {"tasks": ["au"], "share": 0.4}]},
     "the shares sum to 1.1, more than 1"),
    ({"groups": [{"tasks": ["emotion"], "share": 1.5}]}, r"groups\[0\].share: 1.5 is not a share"),
    ({"groups": [{"tasks": ["emotion"], "fraction": 0.5}]}, r"groups\[0\]: .* is not \{tasks: \[...\], share"),
    ({"groups": [], "fraction": 0.2}, r"unknown key\(s\) \['fraction'\]"),
    ({"groups": [{"tasks": ["sentiment"], "share": 0.5}]}, "sentiment is in a group and sentiment_from_text is true"),
    ({"text_fraction": -0.1}, "text_fraction: -0.1 is not a share"),
])
def test_a_bad_partial_label_setting_names_its_key(tiny_data, config, message):
    with pytest.raises(ConfigError, match=message):
        AffectSynthDataModule(root=str(tiny_data), **TINY_DATA, partial_labels=config)


def test_partial_labels_do_not_mix_with_a_label_fraction(tiny_data):
    with pytest.raises(ConfigError, match="partial_labels: set label_fraction to 1"):
        AffectSynthDataModule(root=str(tiny_data), **TINY_DATA, label_fraction=0.5, partial_labels={"groups": GROUPS})
