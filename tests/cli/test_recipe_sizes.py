"""Issue 16.6: a recipe shrunk the way its `--help` suggests is checked before any run (a size that gives a run no
training batch is refused with the smallest that gives one), and a pretraining is recorded as done only once its
best.ckpt exists."""

from __future__ import annotations

import json

import pytest

from conftest import TINY_DATA, affectlab

from affectlab.cli.recipe import recipe_parser
from affectlab.data.synth import SynthConfig
from affectlab.data.synth.generator import _deal, clip_identities
from affectlab.errors import ConfigError
from affectlab.experiments.recipe import Recipe, RecipeOptions, synth_train_batches


def test_clip_identities_are_the_generators_deal():
    config = SynthConfig(num_clips=53, num_identities=7, seed=5)
    assert clip_identities(config).tolist() == [_deal(5, 0, 7, i) for i in range(53)]


def test_a_size_without_a_training_batch_is_refused_before_any_run_with_the_smallest_that_has_one(tmp_path):
    store = tmp_path / "runs"

    def recipe(num_clips: int) -> Recipe:
        return Recipe(RecipeOptions("conclugen", "synth", store=str(store),
                                    extra=["--data.init_args.num_clips", str(num_clips)]))

    with pytest.raises(ConfigError, match=r"the pretraining \(synth_pretrain.yaml\) would train on no batch: .* a batch "
                                          r"takes 32 clips, 4 of each of 8 identities.* smallest num_clips that gives "
                                          r"one is (\d+)") as refused:
        recipe(600)  # 2 or 3 clips of each of 240 identities: no identity fills its 4
    smallest = int(refused.value.args[0].split("smallest num_clips that gives one is ")[1].split(" ")[0])
    recipe(smallest)  # accepted ...
    with pytest.raises(ConfigError, match="would train on no batch"):
        recipe(smallest - 1)  # ... and one fewer is not
    assert not (store / "mlflow.db").exists()  # no run was created
    with pytest.raises(ConfigError, match=r"the pretraining .* would train on no batch"):  # given as --key=value
        Recipe(RecipeOptions("conclugen", "synth", store=str(store), extra=["--data.init_args.num_clips=600"]))


def test_the_helps_own_example_fits():
    epilog = recipe_parser().epilog
    example = epilog.split("e.g. ")[1].split(" (")[0].split()
    assert example[0] == "--data.init_args.num_clips"
    Recipe(RecipeOptions("conclugen", "synth", extra=example))


def test_train_batches_count_whole_identity_groups():
    args = {"num_clips": 48, "num_identities": 6, "batch_size": 8, "clips_per_identity": 4}
    assert synth_train_batches(args) == (4, 32, 4)  # 4 train identities of 8 clips: 8 groups of 4, 2 a batch
    assert synth_train_batches({**args, "clips_per_identity": None})[0] == 1


def test_a_pretraining_without_best_ckpt_is_not_recorded_as_done(tiny_data, tmp_path):
    store = tmp_path / "runs"
    args = ["recipe", "contrast_only", "synth", "--data-root", str(tiny_data), "--store", str(store), "--quiet",
            "--pretrain-epochs", "1", "--probe-steps", "2", "--no-floor", "--no-ceiling", "--fractions", "1",
            "--model.init_args.kmeans_queue_size", "2"]
    for key, value in TINY_DATA.items():
        args += [f"--data.init_args.{key}", str(value)]
    result = affectlab(*args, "--trainer.limit_train_batches", "0", check=False, timeout=300)
    assert result.returncode != 0 and "ended without best.ckpt: it trained on no batch" in result.stderr
    assert "Traceback" not in result.stderr
    record = json.loads((store / "recipes/contrast_only-synth-seed127.json").read_text())
    assert not record["pretrain_done"] and record["pretrain_run_id"] is None and record["rows"] == []
    # what stopped it removed (other options): the recipe starts afresh, not refused as made with other options
    recipe = Recipe(RecipeOptions("contrast_only", "synth", data_root=str(tiny_data), store=str(store), pretrain_epochs=1,
                                  probe_steps=2, floor=False, ceiling=False, fractions=(1.0,), extra=args[16:]))
    assert recipe.record.config_digest != record["config_digest"] and recipe.record.pretrain_run_id is None
    recipe.record.pretrain_run_id = "interrupted"  # a step under way: other options are refused again
    recipe.record.save(recipe.record_path)
    with pytest.raises(ConfigError, match="was made with other configs or options"):
        Recipe(RecipeOptions("contrast_only", "synth", data_root=str(tiny_data), store=str(store), extra=args[16:]))


def test_a_probe_without_best_ckpt_records_no_row(tiny_data, tmp_path):
    """A probe that trains on no batch would test an untrained model: its scores are not recorded."""
    from affectlab.experiments.recipe import FLOOR

    extra = ["--trainer.limit_train_batches", "0"]
    for key, value in TINY_DATA.items():
        extra += [f"--data.init_args.{key}", str(value)]
    recipe = Recipe(RecipeOptions("contrast_only", "synth", data_root=str(tiny_data), store=str(tmp_path / "runs"),
                                  probe_steps=2, quiet=True, extra=extra))
    with pytest.raises(ConfigError, match=r"probe floor \(random init\) at 1: run \w+ ended without best.ckpt"):
        recipe.probe(FLOOR, 1.0, None)  # the floor needs no pretraining
    assert recipe.record.rows == [] and not recipe.record_path.exists()
