"""OpenFace 2.0 and py-feat per-frame CSV files read as feature sequences; malformed tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TINY_DATA

from affectlab.data.contract import EMOTIONS
from affectlab.data.readers.frame_tables import FrameTableDataModule, read_table, FORMATS
from affectlab.data.splits import check_disjoint
from affectlab.data.synth.export import export_frame_tables
from affectlab.errors import DataError


@pytest.mark.parametrize("tool, dim", [("openface", 17 + 18 + 8 + 3), ("pyfeat", 20 + 7 + 3)])
def test_tool_output_becomes_feature_sequences_with_labels(synth, tmp_path, tool, dim):
    export_frame_tables(synth, tmp_path, tool)
    module = FrameTableDataModule(tool, str(tmp_path), batch_size=4)
    module.setup()
    assert len(module.columns) == dim
    assert sum(len(v) for v in module.splits.values()) == len(synth)
    batch = next(iter(module.test_dataloader()))
    assert batch["video"].shape[1:] == (TINY_DATA["num_frames"], dim) and batch["video_mask"].all()
    clip = int(batch["id"][0])
    assert EMOTIONS[int(batch["targets"]["emotion"][0])] == EMOTIONS[int(synth.emotion[clip])]
    au1 = module.columns.index("AU01_r" if tool == "openface" else "AU01")
    scale = 1.0 if tool == "openface" else 5.0
    expected = torch.from_numpy(np.asarray(synth.au_intensity[clip])[:, 0]).float()
    assert torch.allclose(batch["video"][0, :, au1] * scale, expected, atol=0.02)


def test_split_is_by_subject_from_labels(synth, tmp_path):
    export_frame_tables(synth, tmp_path, "openface")
    module = FrameTableDataModule("openface", str(tmp_path))
    module.setup()
    check_disjoint(module.splits, np.asarray(synth.identity))  # files are clips in order: id = clip index


def test_untracked_frames_and_extra_faces_are_left_out(synth, tmp_path):
    export_frame_tables(synth, tmp_path, "openface")
    path = tmp_path / "clip_00000.csv"
    lines = path.read_text().splitlines()
    header = [h.strip() for h in lines[0].split(",")]
    row = [v.strip() for v in lines[1].split(",")]
    row[header.index("success")] = "0"
    second_face = [v.strip() for v in lines[2].split(",")]
    second_face[header.index("face_id")] = "1"
    path.write_text("\n".join([lines[0], ", ".join(row), *lines[2:], ", ".join(second_face)]) + "\n")
    values, _ = read_table(path, FORMATS["openface"])
    assert len(values) == TINY_DATA["num_frames"] - 1


def test_malformed_tables_name_file_line_and_column(synth, tmp_path):
    export_frame_tables(synth, tmp_path, "pyfeat")
    path = tmp_path / "clip_00001.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    row = lines[2].split(",")
    row[header.index("AU04")] = "high"
    path.write_text("\n".join([lines[0], lines[1], ",".join(row)]) + "\n")
    with pytest.raises(DataError, match=r"clip_00001.csv, line 3, column AU04: 'high' is not a number"):
        read_table(path, FORMATS["pyfeat"])
    path.write_text(lines[0] + "\n" + ",".join(row[:10]) + "\n")
    with pytest.raises(DataError, match=r"line 2: 10 values for"):
        read_table(path, FORMATS["pyfeat"])
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="not a pyfeat table"):
        read_table(path, FORMATS["pyfeat"])
    (tmp_path / "labels.csv").write_text("file,emotion\nclip_00002.csv,joy\n")
    path.unlink()
    with pytest.raises(DataError, match=r"labels.csv, line 2: emotion 'joy' is not one of"):
        FrameTableDataModule("pyfeat", str(tmp_path)).setup()


def test_fuzzed_rows_never_crash_with_an_unclear_error(synth, tmp_path):
    """Random edits of a valid table: each read either succeeds or raises a DataError naming the file."""
    export_frame_tables(synth, tmp_path, "openface")
    original = (tmp_path / "clip_00003.csv").read_text()
    rng = np.random.default_rng(0)
    for trial in range(40):
        text = list(original)
        for _ in range(int(rng.integers(1, 6))):
            position = int(rng.integers(0, len(text)))
            text[position] = str(rng.choice(list("x,;\n\t-.e9 ")))
        path = tmp_path / f"fuzz_{trial}.csv"
        path.write_text("".join(text))
        try:
            read_table(path, FORMATS["openface"])
        except DataError as error:
            assert str(path) in str(error)
