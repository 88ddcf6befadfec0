"""`affectlab recipe VARIANT mosei|meld|caer`: the recipe on AffectSynth exported in CMU-MOSEI's layout, through
the command; the label subsets its runs see; what it says when the prepared features are missing or unfit."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import yaml

from conftest import TINY_DATA, affectlab, mlflow_client

from affectlab.data.readers.mosei import MOSEI_EMOTIONS, MoseiDataModule
from affectlab.data.label_subset import LabelSubsetDataModule
from affectlab.data.registry import export_dataset
from affectlab.data.store.prepare import prepare
from affectlab.errors import ConfigError
from affectlab.experiments.recipe import CEILING, FLOOR, Recipe, RecipeOptions
from affectlab.experiments.recipe_data import DataInputs, check_pretrain_fits

SIZES = {k: TINY_DATA[k] for k in ("num_clips", "num_identities", "num_frames", "image_size")}


@pytest.fixture(scope="module")
def mosei_export(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("mosei")
    export_dataset("mosei", out, cache=tiny_data, **SIZES)
    return out


def tiny(store) -> list[str]:
    return ["--store", str(store), "--quiet", "--pretrain-epochs", "1", "--probe-steps", "2", "--ceiling-epochs", "1",
            "--model.init_args.kmeans_queue_size", "2", "--data.init_args.data.init_args.batch_size", "8"]


def runs_by_name(store) -> dict[str, object]:
    client = mlflow_client(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return {run.info.run_name: run for run in runs}


def test_conclugen_on_mosei_pretrains_unlabelled_probes_multilabel_and_reports_per_class(mosei_export, tmp_path):
    store = tmp_path / "store"
    result = affectlab("recipe", "conclugen", "mosei", "--data-root", str(mosei_export), "--fractions", "0.5",
                       *tiny(store), timeout=300)
    assert "P (weighted)" in result.stdout and "F1 (weighted)" in result.stdout and "ceiling" in result.stdout
    record = json.loads((store / "recipes/conclugen-mosei-seed127.json").read_text())
    rows = {(r["representation"], r["fraction"]): r for r in record["rows"]}
    assert set(rows) == {("conclugen", 0.5), (FLOOR, 0.5), (CEILING, 1.0)}
    for row in rows.values():
        assert 0.0 <= row["acc"] <= 1.0 and row["precision_weighted"] is not None and row["recall_weighted"] is not None
        assert list(row["per_class"]) == list(MOSEI_EMOTIONS)  # the SDK's order
        assert set(row["per_class"]["happy"]) == {"acc", "precision", "recall", "f1"}
    runs = runs_by_name(store)
    pretrain = runs["conclugen-mosei-seed127"].data.params
    assert pretrain["data.init_args.serve_labels"] == "False"  # the pretraining is served no label
    probe = runs["probe-conclugen-0.5-seed127"].data.params
    assert probe["model.init_args.multi_label"] == "True" and probe["model.init_args.task"] == "emotion_presence"
    assert probe["data.init_args.label_fraction"] == "0.5" and probe["model.init_args.checkpoint_path"].endswith("best.ckpt")
    assert probe["data.init_args.data.init_args.batch_size"] == "8"  # the user's option wins over the probes' 4096
    # BCE pos_weight per emotion, negatives / positives among the train labels the probe kept (label seed = seed)
    from affectlab.methods.probe import positive_weights

    kept = LabelSubsetDataModule(MoseiDataModule(root=str(mosei_export)), label_fraction=0.5, label_seed=127)
    weights = probe_class_weights(store, runs["probe-conclugen-0.5-seed127"].info.run_id)
    assert torch.allclose(weights, positive_weights(kept.class_counts("emotion_presence")))
    assert runs["supervised-ceiling-seed127"].data.params["model.init_args.freeze"] == "False"
    model = yaml.safe_load((store / "recipes/conclugen-mosei-seed127-model.yaml").read_text())
    sizes = {m: e["init_args"]["in_features"] for m, e in model["init_args"]["encoders"].items()}
    assert sizes == {"video": 35, "audio": 74, "text": 300}  # FACET, COVAREP, word vectors
    with open(store / "recipes/conclugen-mosei-seed127-per-class.csv") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 3 * 6 and {r["class"] for r in table} == set(MOSEI_EMOTIONS)


def test_a_two_modality_variant_gets_a_two_modality_data_config(mosei_export, tmp_path):
    store = tmp_path / "store"  # named relative to the working folder, as a user would
    affectlab("recipe", "contrast_only_video_audio", "mosei", "--data-root", str(mosei_export), "--fractions", "1",
              "--no-floor", "--no-ceiling", *tiny("store"), cwd=tmp_path, timeout=300)
    runs = runs_by_name(store)
    for name in ("contrast_only_video_audio-mosei-seed127", "probe-contrast_only_video_audio-1-seed127"):
        assert runs[name].data.params["data.init_args.data.init_args.modalities"] == "['video', 'audio']", name
    model = yaml.safe_load((store / "recipes/contrast_only_video_audio-mosei-seed127-model.yaml").read_text())
    assert list(model["init_args"]["encoders"]) == ["video", "audio"]


def test_the_pretraining_data_serves_no_labels(mosei_export):
    data = LabelSubsetDataModule(MoseiDataModule(root=str(mosei_export), batch_size=8), serve_labels=False)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert "targets" not in batch and "target_mask" not in batch
    assert data.tasks == () and data.class_names == {} and set(data.modalities) == {"video", "audio", "text"}


def test_a_label_fraction_keeps_a_seeded_draw_of_each_label_set_and_counts_only_it(mosei_export):
    full = MoseiDataModule(root=str(mosei_export))
    half = LabelSubsetDataModule(MoseiDataModule(root=str(mosei_export)), label_fraction=0.5, label_seed=3)
    assert half.task == "emotion_presence"  # the first classification task
    train = half.dataset("train")
    masks = torch.stack([train[i]["target_mask"]["emotion_presence"] for i in range(len(train))])
    labels = [tuple(full.dataset("train")[i]["targets"]["emotion_presence"].int().tolist()) for i in range(len(train))]
    for label_set in set(labels):  # per label set: round(half) of its samples, at least one
        members = [i for i, s in enumerate(labels) if s == label_set]
        assert int(masks[members].sum()) == max(1, round(0.5 * len(members)))
    assert 0 < int(masks.sum()) < len(train)
    counts = half.class_counts("emotion_presence")
    assert counts.shape == (6, 2) and int(counts[0].sum()) == int(masks.sum())  # the kept labels only
    val = half.dataset("val")
    assert all(bool(val[i]["target_mask"]["emotion_presence"]) for i in range(len(val)))
    again = LabelSubsetDataModule(MoseiDataModule(root=str(mosei_export)), label_fraction=0.5, label_seed=3)
    assert again.kept() == half.kept()
    with pytest.raises(ConfigError, match="label_fraction: 0 is not a fraction"):
        LabelSubsetDataModule(MoseiDataModule(root=str(mosei_export)), label_fraction=0)


def test_meld_without_its_prepared_store_names_the_prepare_command(tmp_path):
    raw = tmp_path / "MELD.Raw"  # the store's default place: beside the data, <data root>-features
    with pytest.raises(ConfigError, match=f"Prepare them once with:\n  affectlab data prepare meld --raw {raw} --out {raw}-features\n"):
        Recipe(RecipeOptions("conclugen", "meld", data_root=str(raw), store=str(tmp_path / "s")))


def test_caer_without_its_prepared_store_names_the_prepare_command(tmp_path):
    raw, features = tmp_path / "CAER", tmp_path / "caer_store"
    with pytest.raises(ConfigError, match=f"affectlab data prepare caer --raw {raw} --out {features}\n"):
        Recipe(RecipeOptions("conclugen", "caer", data_root=str(raw), features=str(features), store=str(tmp_path / "s")))


def test_a_store_missing_a_modality_of_the_variant_is_named(mosei_export, tmp_path):
    store = tmp_path / "features"
    prepare("mosei", str(mosei_export), str(store))
    index = json.loads((store / "index.json").read_text())
    index["dims"].pop("text")
    (store / "index.json").write_text(json.dumps(index))
    with pytest.raises(ConfigError, match=r"holds \['audio', 'video'\], but conclugen on meld reads \['video', 'audio', 'text'\]"):
        Recipe(RecipeOptions("conclugen", "meld", data_root=str(tmp_path / "raw"), features=str(store), store=str(tmp_path / "s")))
    # a two-modality variant reads what is there
    Recipe(RecipeOptions("contrast_only_video_audio", "meld", data_root=str(tmp_path / "raw"), features=str(store),
                         store=str(tmp_path / "s")))


def test_voxceleb2_pretraining_needs_its_store_and_features_that_fit(mosei_export, tmp_path):
    options = dict(variant="conclugen", dataset="mosei", data_root=str(mosei_export), store=str(tmp_path / "s"))
    with pytest.raises(ConfigError, match="--pretrain-data voxceleb2 needs --pretrain-root STORE"):
        Recipe(RecipeOptions(**options, pretrain_data="voxceleb2"))
    with pytest.raises(ConfigError, match=f"affectlab data prepare voxceleb2 --raw VOXCELEB2_DIR --out {tmp_path / 'vox'}"):
        Recipe(RecipeOptions(**options, pretrain_data="voxceleb2", pretrain_root=str(tmp_path / "vox")))
    with pytest.raises(ConfigError, match=r"do not fit those of .*video: 512 against 35"):
        check_pretrain_fits(DataInputs("vox", {"video": 512, "audio": 74}), DataInputs("mosei", {"video": 35, "audio": 74}))
    with pytest.raises(ConfigError, match="do not fit"):  # face crops cannot feed a features encoder
        check_pretrain_fits(DataInputs("vox", {"video": 12}, ["video"]), DataInputs("mosei", {"video": 12}))


def test_recipe_pretrains_on_a_voxceleb2_store_and_probes_the_data_set(mosei_export, tmp_path):
    """The pretraining reads --pretrain-root (here a store of MOSEI-sized features: what VoxCeleb2 prepared with
    the same backbones as the probed set holds), the probes read the probed data set."""
    pretrain_store = tmp_path / "vox_store"
    prepare("mosei", str(mosei_export), str(pretrain_store))
    store = tmp_path / "store"
    affectlab("recipe", "contrast_only_video_audio", "mosei", "--data-root", str(mosei_export), "--fractions", "1",
              "--no-floor", "--no-ceiling", "--pretrain-data", "voxceleb2", "--pretrain-root", str(pretrain_store),
              *tiny(store), timeout=300)
    record = json.loads((store / "recipes/contrast_only_video_audio-mosei-voxceleb2-seed127.json").read_text())
    assert record["pretrain_done"] and [r["representation"] for r in record["rows"]] == ["contrast_only_video_audio"]
    runs = runs_by_name(store)
    pretrain = runs["contrast_only_video_audio-mosei-seed127"].data.params
    assert pretrain["data.init_args.data.class_path"].endswith("FeatureStoreDataModule")
    assert pretrain["data.init_args.data.init_args.root"] == str(pretrain_store)
    assert runs["probe-contrast_only_video_audio-1-seed127"].data.params["data.init_args.data.init_args.root"] == str(mosei_export)


def write_store(path, dims: dict[str, int], samples: int = 42) -> None:
    """A store as ``data prepare meld --encoder ...`` writes one of every modality: features per clip, 7 emotions
    (the train split holds no clip of the last, so the probe's class weights must cope with an empty class)."""
    import numpy as np

    from affectlab.data.contract import EMOTIONS
    from affectlab.data.store.feature_store import FeatureStoreWriter, StoreSample

    rng = np.random.default_rng(0)
    writer = FeatureStoreWriter(path, dims, {"emotion": ()}, task_dtypes={"emotion": "int64"},
                                class_names={"emotion": list(EMOTIONS)}, source={"name": "meld"})
    rows = []
    for i in range(samples):
        split = "train" if i < 28 else "val" if i < 35 else "test"
        emotion = i % 6 if split == "train" else i % 7
        rows.append(StoreSample(i, split, {m: (rng.normal(size=(3, d)) + emotion).astype(np.float32) for m, d in dims.items()},
                                {"emotion": emotion}))
    writer.write(rows, len(rows))


def test_meld_recipe_reads_its_prepared_store_with_inverse_frequency_weights(tmp_path):
    features, store = tmp_path / "MELD.Raw-features", tmp_path / "runs"
    write_store(features, {"video": 16, "audio": 12, "text": 8})
    affectlab("recipe", "conclugen", "meld", "--data-root", str(tmp_path / "MELD.Raw"), "--fractions", "0.5",
              "--no-floor", "--no-ceiling", *tiny(store), timeout=300)  # the store found at <data root>-features
    record = json.loads((store / "recipes/conclugen-meld-seed127.json").read_text())
    assert len(record["rows"]) == 1 and list(record["rows"][0]["per_class"])[:2] == ["neutral", "happy"]
    probe = runs_by_name(store)["probe-conclugen-0.5-seed127"]
    assert probe.data.params["model.init_args.multi_label"] == "False" and probe.data.params["model.init_args.num_classes"] == "7"
    # Inverse class frequency of the kept labels, w_c = N / (C n_c): 2 of each of the 6 train classes (round(2.5),
    # round(2)), the empty seventh counted as one.
    weights = probe_class_weights(store, probe.info.run_id)
    assert torch.allclose(weights, torch.tensor([13 / 14] * 6 + [13 / 7]))


def probe_class_weights(store, run_id: str) -> torch.Tensor:
    (checkpoint,) = store.glob(f"artifacts/*/{run_id}/artifacts/checkpoints/best.ckpt")
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]["class_weights"]


def test_the_digest_of_a_real_data_set_covers_its_experiment_configs_and_features(tmp_path, monkeypatch):
    import shutil

    from conftest import CONFIGS

    from affectlab.experiments.recipe import recipe_digest

    root = tmp_path / "configs"
    shutil.copytree(CONFIGS, root)
    monkeypatch.setattr("affectlab.experiments.recipe.config_root", lambda: root)
    options = RecipeOptions("conclugen", "mosei", data_root="d")
    before = recipe_digest(options, [{"dims": {"video": 35}}])
    assert recipe_digest(options, [{"dims": {"video": 36}}]) != before  # other features: other numbers
    probe = root / "experiment/mosei/probe.yaml"
    probe.write_text(probe.read_text().replace("max_epochs: 20", "max_epochs: 10"))
    assert recipe_digest(options, [{"dims": {"video": 35}}]) != before
    synth = RecipeOptions("conclugen", "synth")
    assert recipe_digest(synth) == recipe_digest(synth, [{"dims": {"video": 36}}])  # synth's records stay valid


def test_variants_read_the_modalities_a_data_set_has():
    from affectlab.experiments.recipe_data import variant_modalities

    assert variant_modalities("conclugen", "mosei") == ["video", "audio", "text"]
    assert variant_modalities("conclugen", "caer") == ["video", "audio"]  # CAER's clips have no transcript
    assert variant_modalities("contrast_only_video_text", "meld") == ["video", "text"]
    with pytest.raises(ConfigError, match=r"reads \['video', 'text'\], but caer has no \['text'\]"):
        variant_modalities("contrast_only_video_text", "caer")
    with pytest.raises(ConfigError, match="mosei.s features hold one view per sample"):
        variant_modalities("simclr", "mosei")


def test_options_that_do_not_apply_are_refused(mosei_export, tmp_path):
    with pytest.raises(ConfigError, match="--features: mosei's recipe reads its own files"):
        Recipe(RecipeOptions("conclugen", "mosei", data_root=str(mosei_export), features=str(tmp_path)))
    with pytest.raises(ConfigError, match="--pretrain-data voxceleb2 applies to mosei, meld and caer"):
        Recipe(RecipeOptions("conclugen", "synth", pretrain_data="voxceleb2", pretrain_root=str(tmp_path)))


def test_a_label_fraction_of_a_single_label_task_is_drawn_per_class(tiny_data):
    from affectlab.data.synth.datamodule import AffectSynthDataModule

    data = LabelSubsetDataModule(AffectSynthDataModule(root=str(tiny_data), **TINY_DATA), label_fraction=0.25, task="emotion")
    data.prepare_data()
    data.setup("fit")
    full = AffectSynthDataModule(root=str(tiny_data), **TINY_DATA)
    full.setup("fit")
    emotions = torch.tensor([int(full.dataset("train")[i]["targets"]["emotion"]) for i in range(len(full.dataset("train")))])
    expected = torch.tensor([max(1, round(0.25 * int(n))) if n else 0 for n in torch.bincount(emotions, minlength=7)])
    assert torch.equal(data.class_counts("emotion"), expected)  # per class: a quarter, at least one
    train = data.dataset("train")
    kept = [i for i in range(len(train)) if bool(train[i]["target_mask"]["emotion"])]
    assert set(kept) == data.kept() and torch.equal(torch.bincount(emotions[kept], minlength=7), expected)
