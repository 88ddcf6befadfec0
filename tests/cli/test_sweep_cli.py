"""``affectlab sweep``'s command line: the sweep file first, ``--dry_run`` taken for the sweep (a ``<name>-dry``
study, ``--dry_run`` on every trial), everything else passed to every trial; mistakes in the sweep file stop
before torch and Lightning are imported."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, affectlab_inline

from affectlab.cli.sweep import split_arguments
from affectlab.errors import ConfigError
from affectlab.experiments.sweep_spec import load_spec


def test_the_sweep_file_comes_first_and_the_rest_goes_to_every_trial():
    path, dry, options = split_arguments(["--config", "s.yaml", "--data.init_args.num_clips", "48", "--dry_run",
                                          "--config", "more.yaml"])
    assert path == Path("s.yaml") and dry and options == ["--data.init_args.num_clips", "48", "--config", "more.yaml"]
    assert split_arguments(["--config=s.yaml", "--dry_run", "false"]) == (Path("s.yaml"), False, [])
    with pytest.raises(ConfigError, match="the first option is --config SWEEP.yaml"):
        split_arguments(["--data.init_args.num_clips", "48"])


def test_a_dry_run_has_its_own_study():
    from affectlab.experiments.sweep import study_name

    spec = load_spec(ROOT / "configs/sweep/synth_supervised_grid.yaml")
    assert study_name(spec, False) == "synth_supervised_grid" and study_name(spec, True) == "synth_supervised_grid-dry"


def test_the_bundled_example_is_a_two_by_two_grid_of_the_supervised_baseline():
    spec = load_spec(ROOT / "configs/sweep/synth_supervised_grid.yaml")
    assert spec.sampler == "grid" and spec.trials == 4 and len(spec.grid) == 2
    assert spec.args[:2] == ["--config", "configs/experiment/synth/supervised.yaml"]
    assert all(d.key.startswith("model.init_args.") for d in spec.dimensions)


def test_help_and_a_bad_sweep_file(tmp_path):
    assert "--dry_run" in affectlab_inline("sweep", "--help").stdout
    assert "affectlab sweep --config SWEEP.yaml" in affectlab_inline("--help").stdout
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nbase: {args: []}\nmetric: test/acc\nspace: {grid: {a: [1]}}\nsampler_sed: 3\n")
    result = affectlab_inline("sweep", "--config", str(path), check=False)
    assert result.returncode == 2 and "unknown key(s) sampler_sed" in result.stderr and "sampler_seed" in result.stderr
