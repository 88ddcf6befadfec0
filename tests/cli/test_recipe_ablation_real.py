"""`affectlab ablation mosei --data-root DIR`: the ablation on a real data set's layout (AffectSynth exported as
CMU-MOSEI, tiny sizes), one variant and one seed, through the command; its section beside AffectSynth's, which it
leaves as it was; a variant the data set cannot serve left out with the reason."""

from __future__ import annotations

import json

import pytest

from conftest import TINY_DATA, affectlab

from affectlab.data.registry import export_dataset
from affectlab.experiments.recipe import FLOOR
from affectlab.experiments.report import END, START, markers

SIZES = {k: TINY_DATA[k] for k in ("num_clips", "num_identities", "num_frames", "image_size")}
VARIANT = "contrast_only_video_audio"


@pytest.fixture(scope="module")
def mosei_export(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("mosei_ablation")
    export_dataset("mosei", out, cache=tiny_data, **SIZES)
    return out


def test_ablation_on_mosei_writes_its_own_section(mosei_export, tmp_path):
    results, store = tmp_path / "results.md", tmp_path / "runs"
    results.write_text(f"# Results\n\n{START}\nthe AffectSynth table\n{END}\n")
    result = affectlab("ablation", "mosei", "--data-root", str(mosei_export), "--variants", VARIANT, "simclr",
                       "--seeds", "0", "--fractions", "1", "--pretrain-epochs", "1", "--probe-steps", "2",
                       "--store", str(store), "--out", str(results),
                       "--data.init_args.data.init_args.batch_size", "8", timeout=400)
    assert "simclr left out" in result.stdout and "one view per sample" in result.stdout
    text = results.read_text()
    start, end = markers("mosei")
    assert f"{START}\nthe AffectSynth table\n{END}" in text  # the synth section untouched
    assert "## ConCluGen ablation on CMU-MOSEI" in text and start in text and end in text
    section = text.split(start)[1].split(end)[0]
    assert "`affectlab ablation mosei --data-root" in section and "seeds 0;" in section
    floor = f"{FLOOR[:-1]}, {VARIANT})"
    for name in (VARIANT, floor):
        assert f"| {name} | " in section, name
    assert "| simclr |" not in section
    assert (tmp_path / "ablation_mosei_label_efficiency.png").is_file()
    record = json.loads((store / f"recipes/{VARIANT}-mosei-seed0.json").read_text())
    assert record["pretrain_done"] and {r["representation"] for r in record["rows"]} == {VARIANT, floor}


def test_ablation_on_a_data_set_without_a_recipe_is_refused(tmp_path):
    result = affectlab("ablation", "disfa", "--variants", VARIANT, "--seeds", "0", "--out", str(tmp_path / "r.md"),
                       check=False)
    assert result.returncode != 0 and "recipe: disfa (" in result.stderr and "Traceback" not in result.stderr
