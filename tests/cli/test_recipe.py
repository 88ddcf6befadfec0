"""`affectlab recipe` and `affectlab ablation`: the runs they chain, their records, their errors, the table."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import CONFIGS, TINY_DATA, affectlab, mlflow_client

from affectlab.experiments.report import END, START, claims, markdown, summarise, write_section
from affectlab.experiments.recipe import CEILING, FLOOR, Recipe, RecipeOptions, Row, model_overrides, recipe_digest
from affectlab.errors import ConfigError


def tiny_recipe_args(data_root, store) -> list[str]:
    args = ["--data-root", str(data_root), "--store", str(store), "--quiet", "--pretrain-epochs", "1",
            "--probe-steps", "3", "--ceiling-epochs", "1", "--model.init_args.kmeans_queue_size", "2"]
    for key, value in TINY_DATA.items():
        args += [f"--data.init_args.{key}", str(value)]
    return args


def test_recipe_names_a_dataset_that_is_read_but_has_no_recipe_yet(tmp_path):
    result = affectlab("recipe", "conclugen", "disfa", "--data-root", str(tmp_path / "disfa"), check=False)
    assert result.returncode == 2
    assert "recipe: disfa (" in result.stderr  # the registry's description follows the name
    assert "is read (affectlab.data." in result.stderr and "does not exist yet" in result.stderr
    assert "recipes run on synth, mosei, meld, caer" in result.stderr
    assert "Traceback" not in result.stderr


def test_recipe_names_the_folder_and_layout_of_an_unlabelled_dataset(tmp_path):
    result = affectlab("recipe", "conclugen", "voxceleb2", "--data-root", str(tmp_path / "vox"), check=False)
    assert result.returncode == 2 and "unlabelled" in result.stderr
    assert str(tmp_path / "vox") in result.stderr and "<dev|test>/mp4/<speaker id>/<video id>/<clip>.mp4" in result.stderr
    assert "Traceback" not in result.stderr


def test_recipe_refuses_unknown_variant_and_dataset(tmp_path):
    result = affectlab("recipe", "conclugenn", "synth", check=False)
    assert result.returncode == 2 and "contrast_only_video_audio" in result.stderr  # lists the variants
    result = affectlab("recipe", "conclugen", "affectnet2", check=False)
    assert result.returncode == 2 and "unknown data set 'affectnet2'" in result.stderr
    result = affectlab("recipe", "conclugen", "rafdb", check=False)
    assert result.returncode == 2 and "rafdb (RAF-DB basic expressions" in result.stderr  # the registry's words
    result = affectlab("recipe", "conclugen", "mosei", "--data-root", str(tmp_path / "nowhere"), check=False)
    assert result.returncode == 2 and f"mosei: root {tmp_path / 'nowhere'} is not a folder" in result.stderr


def test_a_record_made_with_other_options_is_refused_not_mixed_in(tmp_path):
    options = RecipeOptions("contrast_only", "synth", seed=0, store=str(tmp_path), probe_steps=500)
    recipe = Recipe(options)
    recipe.record.rows.append(Row("contrast_only", 1.0, 0.5, 0.5, "run"))
    recipe.record.save(recipe.record_path)
    saved = json.loads(recipe.record_path.read_text())
    assert saved["config_digest"] == recipe.record.config_digest and len(saved["config_digest"]) == 16
    assert Recipe(options).record.find("contrast_only", 1.0) is not None  # same options: resumes
    with pytest.raises(ConfigError, match="contrast_only-synth-seed0.json was made with other configs or options"):
        Recipe(RecipeOptions("contrast_only", "synth", seed=0, store=str(tmp_path), probe_steps=50))
    with pytest.raises(ConfigError, match="Delete it"):
        Recipe(RecipeOptions("contrast_only", "synth", seed=0, store=str(tmp_path), extra=["--model.init_args.augment=false"]))
    # A record from before digests existed is taken as it is, and gets the digest.
    del saved["config_digest"]
    recipe.record_path.write_text(json.dumps(saved))
    assert Recipe(options).record.config_digest == recipe_digest(options)


def test_the_digest_covers_the_reconstruction_targets_a_variant_names(tmp_path, monkeypatch):
    root = tmp_path / "configs"
    shutil.copytree(CONFIGS, root)
    monkeypatch.setattr("affectlab.experiments.recipe.config_root", lambda: root)
    digests = lambda: {v: recipe_digest(RecipeOptions(v, "synth")) for v in ("generative_only", "contrast_only")}
    before = digests()
    target = root / "nn/targets/frames_motion.yaml"
    target.write_text(target.read_text().replace("size: 8", "size: 4"))
    after = digests()
    assert after["generative_only"] != before["generative_only"]  # it rebuilds that target
    assert after["contrast_only"] == before["contrast_only"]  # it has no reconstruction term: its records stay


def test_model_overrides_go_to_the_probe_backbone_and_not_to_the_ceiling():
    extra = ["--model.init_args.kmeans_queue_size", "2", "--data.init_args.num_clips=48", "--model.init_args.augment=false"]
    assert model_overrides(extra, "pretrain") == extra
    assert model_overrides(extra, "probe") == [
        "--model.init_args.backbone.init_args.kmeans_queue_size", "2", "--data.init_args.num_clips=48",
        "--model.init_args.backbone.init_args.augment=false",
    ]
    assert model_overrides(extra, "ceiling") == ["--data.init_args.num_clips=48"]


def test_recipe_pretrains_probes_and_prints_the_table(tiny_data, tmp_path):
    # In the default store (./runs, no --store), where MLflow's tracking variable once sent the in-process
    # probe runs' checkpoints and plots to ./mlruns (issue 16.4): everything must stay under ./runs.
    work = tmp_path / "work"
    work.mkdir()
    store = work / "runs"
    args = ["recipe", "conclugen", "synth", "--fractions", "0.5", "1", "--finetune", "--per-modality",
            *tiny_recipe_args(tiny_data, store)]
    i = args.index("--store")
    del args[i:i + 2]
    result = affectlab(*args, cwd=work, timeout=600)
    assert sorted(p.name for p in work.iterdir()) == ["runs"]  # no ./mlruns beside the store
    assert "acc @ 50%" in result.stdout and "floor" in result.stdout and "ceiling" in result.stdout
    record = json.loads((store / "recipes/conclugen-synth-seed127.json").read_text())
    assert record["pretrain_done"]
    rows = {(r["representation"], r["fraction"]) for r in record["rows"]}
    assert rows == {
        ("conclugen", 0.5), ("conclugen", 1.0), ("conclugen fine-tuned", 0.5), ("conclugen fine-tuned", 1.0),
        (FLOOR, 0.5), (FLOOR, 1.0), ("conclugen video only", 1.0), ("conclugen audio only", 1.0),
        ("conclugen text only", 1.0), (CEILING, 1.0),
    }
    client = mlflow_client(store)
    probe = client.get_run(next(r["run_id"] for r in record["rows"] if r["representation"] == "conclugen" and r["fraction"] == 0.5))
    assert probe.data.params["data.init_args.label_fraction"] == "0.5"
    assert probe.data.params["model.init_args.checkpoint_path"].endswith("best.ckpt")
    floor = client.get_run(next(r["run_id"] for r in record["rows"] if r["representation"] == FLOOR))
    assert floor.data.params["model.init_args.checkpoint_path"] == "None"
    runs_before = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    # Run again: every step is recorded as done, so nothing trains and the same table comes back.
    again = affectlab(*args, cwd=work, timeout=600)
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == runs_before
    assert again.stdout.split("record:")[0].splitlines()[-5:] == result.stdout.split("record:")[0].splitlines()[-5:]
    for row in record["rows"]:  # every probe's checkpoints are in the store's artifact root
        assert next(store.glob(f"artifacts/*/{row['run_id']}/artifacts/checkpoints"), None) is not None, row


def test_an_interrupted_recipe_resumes_its_pretraining_run(tiny_data, tmp_path):
    store = tmp_path / "store"
    args = ["recipe", "simclr", "synth", "--fractions", "1", "--no-floor", "--no-ceiling", *tiny_recipe_args(tiny_data, store)]
    args.remove("--model.init_args.kmeans_queue_size")
    args.remove("2")
    affectlab(*args, timeout=600)
    path = store / "recipes/simclr-synth-seed127.json"
    record = json.loads(path.read_text())
    record.update(pretrain_done=False, rows=[])  # as if killed after the pretraining run was opened
    path.write_text(json.dumps(record))
    result = affectlab(*args, timeout=600)
    assert f"run_id: {record['pretrain_run_id']}" in result.stdout and "(reused)" in result.stdout
    assert json.loads(path.read_text())["pretrain_run_id"] == record["pretrain_run_id"]


def _rows() -> list[Row]:
    rows = []
    for seed, shift in enumerate((0.0, 0.02)):
        for fraction in (0.1, 1.0):
            for name, acc in (("conclugen", 0.5), ("simclr", 0.3), ("contrast_only", 0.45), (FLOOR, 0.35)):
                rows.append(Row(name, fraction, acc + shift, acc + shift - 0.01, f"run{seed}"))
        for modality, acc in (("video", 0.3), ("audio", 0.4), ("text", 0.45)):
            rows.append(Row(f"conclugen {modality} only", 1.0, acc, acc, f"run{seed}"))
        rows.append(Row(CEILING, 1.0, 0.75, 0.75, f"run{seed}"))
    return rows


def test_ablation_summary_is_mean_and_std_over_seeds():
    summary = summarise(_rows())
    mean, std, n = summary[("conclugen", 0.1)]["acc"]
    assert n == 2 and mean == pytest.approx(0.51) and std == pytest.approx(0.0141421356)


def test_ablation_claims_are_computed_from_the_numbers():
    summary = summarise(_rows())
    lines = claims(summary, [0.1, 1.0], ["conclugen", "contrast_only", "simclr"])
    assert "- ConCluGen best at 10% labels: holds." in lines
    assert any("Multi-modal above SimCLR (0.310) at 100%: 2 of 2" in line for line in lines)
    assert "- Above its floor at 10%: 2 of 2 multi-modal variants." in lines
    # conclugen 0.51 ± 0.014 against the floor 0.36 ± 0.014: clearly; contrast_only 0.46 ± 0.014 too.
    assert "- Clearly above its floor (mean - std > floor mean + std) at 10%: 2 of 2 multi-modal variants." in lines
    close = [r if r.representation != "contrast_only" else Row("contrast_only", r.fraction, r.acc - 0.08, r.f1_weighted, r.run_id)
             for r in _rows()]  # 0.38 ± 0.014: above the floor's mean, but the bands overlap
    lines = claims(summarise(close), [0.1], ["conclugen", "contrast_only", "simclr"])
    assert "- Above its floor at 10%: 2 of 2 multi-modal variants." in lines
    assert "- Clearly above its floor (mean - std > floor mean + std) at 10%: 1 of 2 multi-modal variants; within a standard deviation: contrast_only." in lines
    assert any(line.startswith("- Fused representation (0.510)") and line.endswith("yes.") for line in lines)
    # A partial ablation (one seed so far) has no spread: "clearly" is not judged rather than trivially true.
    lines = claims(summarise([r for r in _rows() if r.run_id == "run0"]), [0.1], ["conclugen", "contrast_only", "simclr"])
    assert "- Clearly above its floor at 10%: not judged for conclugen, contrast_only (one seed: no standard deviation yet)." in lines
    assert not any("mean - std > floor mean + std" in line for line in lines)
    worse = [r if r.representation != "simclr" else Row("simclr", r.fraction, 0.9, 0.9, r.run_id) for r in _rows()]
    lines = claims(summarise(worse), [1.0], ["conclugen", "contrast_only", "simclr"])
    assert "does not hold: simclr is best" in lines[0]


def test_variants_of_another_architecture_get_their_own_floor():
    from affectlab.experiments.recipe import floor_name

    assert floor_name("conclugen") == floor_name("contrast_only") == FLOOR
    assert floor_name("simclr") == "floor (random init, simclr)"
    assert floor_name("contrast_only_video_audio") == "floor (random init, contrast_only_video_audio)"


def test_ablation_section_replaces_its_markers_only(tmp_path):
    path = tmp_path / "results.md"
    path.write_text(f"# Results\n\nbefore\n\n{START}\nold table\n{END}\n\nafter\n")
    section = markdown(_rows(), [0.1, 1.0], ["conclugen", "contrast_only", "simclr"], "affectlab ablation", [0, 1], 3.0)
    write_section(path, section)
    text = path.read_text()
    assert "old table" not in text and text.startswith("# Results\n\nbefore") and text.endswith("after\n")
    assert "| conclugen | 0.510 ± 0.014 |" in text and "affectlab ablation" in text
    fresh = tmp_path / "fresh.md"
    write_section(fresh, section)
    assert START in fresh.read_text()


@pytest.mark.slow
def test_pretrained_probe_lands_between_floor_and_ceiling(tmp_path):
    """A small AffectSynth (480 clips of 32 identities, 4 frames of 32x32): the probe on ConCluGen's pretrained
    representation beats the same probe on the randomly initialised model and stays below the supervised
    model trained on every label. About 6 minutes on 2 cores."""
    store = tmp_path / "store"
    small = {"num_clips": 480, "num_identities": 32, "num_frames": 4, "image_size": 32, "batch_size": 32}
    args = ["recipe", "conclugen", "synth", "--fractions", "1", "--data-root", str(tmp_path / "data"),
            "--store", str(store), "--quiet", "--pretrain-epochs", "10", "--seed", "0"]
    for key, value in small.items():
        args += [f"--data.init_args.{key}", str(value)]
    affectlab(*args, timeout=1800)
    rows = {r["representation"]: r["acc"] for r in json.loads((store / "recipes/conclugen-synth-seed0.json").read_text())["rows"]}
    assert rows[FLOOR] < rows["conclugen"] < rows[CEILING], rows


def test_ablation_figure_is_written(tmp_path):
    from affectlab.experiments.report import save_figure

    path = tmp_path / "docs/ablation_label_efficiency.png"
    save_figure(_rows(), ["conclugen", "contrast_only", "simclr"], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pretrain_epochs_override_matches_the_config_it_replaces():
    import yaml

    from affectlab.runs.configs import config_path
    from affectlab.experiments.recipe import pretrain_schedule

    config = yaml.safe_load(config_path("experiment/synth/pretrain.yaml").read_text())
    epochs = config["trainer"]["max_epochs"]
    override = pretrain_schedule(epochs)
    assert override["trainer"]["max_epochs"] == epochs
    schedule = override["model"]["init_args"]["lr_scheduler_init"]["init_args"]
    configured = config["model"]["init_args"]["lr_scheduler_init"]["init_args"]
    assert {k: schedule[k] for k in ("warmup_t", "lr_min")} == {k: configured[k] for k in ("warmup_t", "lr_min")}
    # the cosine's length is the trainer's max_epochs in both (methods/optim.py), stated nowhere else
    assert "t_initial" not in schedule and "t_initial" not in configured
    assert pretrain_schedule(100)["model"]["init_args"]["lr_scheduler_init"]["init_args"]["warmup_t"] == 5  # the original's 5
