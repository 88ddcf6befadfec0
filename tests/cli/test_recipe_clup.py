"""``affectlab recipe clup synth``: the source model, SwAV, the CluP student, SHOT and the target oracle as runs of
one recipe on tiny AffectSynth domains, the table side by side, resumption from the record, and its refusals."""

from __future__ import annotations

import json

import pytest

from conftest import affectlab_inline

from affectlab.errors import ConfigError
from affectlab.experiments.clup_recipe import (
    ClupRecipe,
    ClupRecipeOptions,
    StageRecord,
    source_architecture,
    split_stage_options,
)


def test_options_go_to_every_run_or_to_the_stage_they_name():
    common, staged = split_stage_options(["--data.init_args.num_clips", "96", "--clup.model.init_args.mode",
                                          "soft-purity", "--shot.trainer.max_epochs=3", "--trainer.limit_train_batches", "2"])
    assert common == ["--data.init_args.num_clips", "96", "--trainer.limit_train_batches", "2"]
    assert staged["clup"] == ["--model.init_args.mode", "soft-purity"] and staged["shot"] == ["--trainer.max_epochs=3"]
    assert staged["source"] == staged["swav"] == staged["oracle"] == []
    with pytest.raises(ConfigError, match="five different models; name the stage.*--clup.model.init_args.dropout"):
        split_stage_options(["--model.init_args.dropout", "0.1"])


def test_the_source_architecture_follows_into_the_models_built_from_its_weights():
    options = ["--model.init_args.label_smoothing", "0.2", "--trainer.max_epochs", "3", "--model.init_args.dropout=0.1"]
    assert source_architecture(options, "--model.init_args.source.init_args.") == [
        "--model.init_args.source.init_args.label_smoothing", "0.2", "--model.init_args.source.init_args.dropout=0.1"]


def test_only_synth_has_the_recipe():
    result = affectlab_inline("recipe", "clup", "expw", check=False)
    assert result.returncode != 0 and "'expw' has no CluP recipe" in result.stdout + result.stderr


def test_a_record_made_with_other_options_is_refused(tmp_path):
    first = ClupRecipe(ClupRecipeOptions(seed=0, store=str(tmp_path), source_epochs=2))
    first.record.stages["source"] = StageRecord("0" * 32, True, {"test/acc": 0.5})
    first.record.save(first.record_path)
    assert json.loads(first.record_path.read_text())["config_digest"]
    ClupRecipe(ClupRecipeOptions(seed=0, store=str(tmp_path), source_epochs=2))  # the same: read back
    with pytest.raises(ConfigError, match="other configs or options.*Delete it"):
        ClupRecipe(ClupRecipeOptions(seed=0, store=str(tmp_path), source_epochs=3))
    dry = ClupRecipe(ClupRecipeOptions(seed=0, store=str(tmp_path), source_epochs=3, extra=["--dry_run"]))
    assert dry.options.dry_run and dry.record_path.name == "clup-synth-seed0-dry.json"
