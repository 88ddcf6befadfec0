"""`affectlab recipe VARIANT meld|caer` end to end: AffectSynth exported in MELD's and CAER's layouts, prepared into
a feature store of every modality (`affectlab data prepare NAME --raw DIR --out STORE --encoder ...`), then the
recipe through the command, for ConCluGen and a two-modality variant on each.

MELD's store holds video, audio and text, CAER's video and audio (their readers serve them: tests/data/test_meld.py,
test_caer.py).
"""

from __future__ import annotations

import json

import pytest

from conftest import affectlab, mlflow_client

from affectlab.data.synth import SynthConfig, ensure
from affectlab.data.synth.export import export_caer, export_meld
from affectlab.experiments.recipe import CEILING, FLOOR

SMALL = SynthConfig(num_clips=14, num_identities=7, num_frames=8, image_size=64, styles=("shaded",))
EXPORTS = {"meld": export_meld, "caer": export_caer}
TWO_MODALITY = {"meld": "contrast_only_video_text", "caer": "contrast_only_video_audio"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """name -> (raw folder, store): each data set exported once and prepared with a tiny timm encoder."""
    synth = ensure(tmp_path_factory.mktemp("synth") / "cache", SMALL, progress=False)
    folders = {}
    for name, export in EXPORTS.items():
        root = tmp_path_factory.mktemp(name)
        raw, store = root / "raw", root / "raw-features"  # the recipe's default place for the store
        export(synth, raw)
        affectlab("data", "prepare", name, "--raw", str(raw), "--out", str(store), "--size", "32", "--num-frames", "4",
                  "--encoder", "test_vit", timeout=300)
        folders[name] = (raw, store)
    return folders


def tiny(store) -> list[str]:
    return ["--store", str(store), "--quiet", "--pretrain-epochs", "1", "--probe-steps", "2", "--ceiling-epochs", "1",
            "--model.init_args.kmeans_queue_size", "2", "--data.init_args.data.init_args.batch_size", "4"]


@pytest.mark.parametrize("name", ["meld", "caer"])
def test_conclugen_recipe_on_the_prepared_store(prepared, name, tmp_path):
    raw, _ = prepared[name]
    store = tmp_path / "runs"
    result = affectlab("recipe", "conclugen", name, "--data-root", str(raw), "--fractions", "1", *tiny(store), timeout=300)
    assert "F1 (weighted)" in result.stdout
    record = json.loads((store / f"recipes/conclugen-{name}-seed127.json").read_text())
    assert {r["representation"] for r in record["rows"]} == {"conclugen", FLOOR, CEILING}
    assert all(len(r["per_class"]) == 7 for r in record["rows"])  # the 7 emotion classes
    client = mlflow_client(store)
    runs = {r.info.run_name: r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])}
    probe = runs["probe-conclugen-1-seed127"].data.params
    assert probe["model.init_args.num_classes"] == "7" and probe["model.init_args.class_weighting"] == "True"
    expected = "['video', 'audio', 'text']" if name == "meld" else "['video', 'audio']"  # CAER has no transcript
    assert probe["data.init_args.data.init_args.modalities"] == expected


@pytest.mark.parametrize("name", ["meld", "caer"])
def test_a_two_modality_variant_on_the_prepared_store(prepared, name, tmp_path):
    raw, features = prepared[name]
    store, variant = tmp_path / "runs", TWO_MODALITY[name]
    affectlab("recipe", variant, name, "--data-root", str(raw), "--features", str(features), "--fractions", "1",
              "--no-floor", "--no-ceiling", *tiny(store), timeout=300)
    record = json.loads((store / f"recipes/{variant}-{name}-seed127.json").read_text())
    assert [r["representation"] for r in record["rows"]] == [variant]
