"""DISFA's reader on AffectSynth exported as ``data prepare disfa`` leaves it (label files + frames) and as seed
001's CSV: layouts found or refused with the option that reads them, alignment, data check, fuzzed inputs."""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest
import torch

from conftest import TINY_DATA

from affectlab.cli.data import data_command
from affectlab.data.contract import ACTION_UNITS
from affectlab.data.readers.disfa import DisfaDataModule, check_disfa_dataset, read_au_file
from affectlab.data.splits import check_disjoint
from affectlab.data.synth.export_disfa import export_disfa
from affectlab.errors import ConfigError, DataError


@pytest.mark.parametrize(("exported", "layout"), [("frames", "authors"), ("frames", "auto"), ("csv", "csv"),
                                                 ("csv", "auto")])
def test_every_frame_comes_back_with_its_intensities_and_subject(synth, tmp_path, exported, layout):
    written = export_disfa(synth, tmp_path, exported)
    assert written == len(synth) * TINY_DATA["num_frames"]
    module = DisfaDataModule(str(tmp_path), layout=layout, image_size=16, batch_size=8)
    module.setup()
    files, intensity, subjects = module.data
    assert len(files) == written and intensity.shape == (written, 12)
    expected = np.rint(np.concatenate([np.asarray(synth.au_intensity[c]) for c in np.argsort(synth.identity, kind="stable")]))
    assert np.array_equal(intensity, expected)
    assert sorted(np.unique(subjects).tolist()) == [i + 1 for i in np.unique(synth.identity).tolist()]
    check_disjoint(module.splits, subjects)
    batch = module.on_after_batch_transfer(next(iter(module.train_dataloader())), 0)
    assert batch["video"].shape[1:] == (1, 3, 16, 16)
    assert torch.equal(batch["targets"]["au"], (batch["targets"]["au_intensity"] >= 2).float())
    counts = module.class_counts()
    assert counts.shape == (12, 2) and (counts.sum(dim=1) == len(module.splits["train"])).all()


def test_folds_cover_every_subject_once(synth, tmp_path):
    export_disfa(synth, tmp_path, "frames")
    tested = []
    for fold in range(3):
        module = DisfaDataModule(str(tmp_path), fold=fold)
        module.setup()
        tested += np.unique(module.data[2][module.splits["test"]]).tolist()
    assert sorted(tested) == sorted(set(tested)) and len(tested) == TINY_DATA["num_identities"]


def test_subset_of_action_units_and_frame_stride(synth, tmp_path):
    export_disfa(synth, tmp_path, "frames")
    eleven = [au for au in ACTION_UNITS if au != 25]  # seed 001's set
    module = DisfaDataModule(str(tmp_path), action_units=eleven, frame_stride=2)
    module.setup()
    assert module.data[1].shape[1] == 11 and module.class_names["au"][-1] == "AU26"
    assert len(module.data[0]) == len(synth) * TINY_DATA["num_frames"] // 2


def test_bad_label_files_name_file_and_line(synth, tmp_path):
    export_disfa(synth, tmp_path, "frames")
    path = tmp_path / "ActionUnit_Labels/SN001/SN001_au4.txt"
    lines = path.read_text().splitlines()
    lines[2] = "3,seven"
    path.write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"SN001_au4.txt, line 3: '3,seven' is not '<frame>,<intensity>'"):
        read_au_file(path)
    lines[2] = "3,9"
    path.write_text("\n".join(lines))
    with pytest.raises(DataError, match="line 3: intensity '9' is not a number from 0 to 5"):
        DisfaDataModule(str(tmp_path)).setup()
    path.write_text("1,0\n")  # a truncated label file: the subject's files disagree, named with both counts
    with pytest.raises(DataError, match=r"SN001_au4.txt labels 1 frames, .*SN001_au1.txt labels 32 \(frames 2-32"):
        DisfaDataModule(str(tmp_path)).setup()
    lines[2] = "3,1"
    path.write_text("\n".join(lines))
    (tmp_path / "ActionUnit_Labels/SN002/SN002_au1.txt").unlink()
    with pytest.raises(DataError, match="SN002_au1.txt is missing"):
        DisfaDataModule(str(tmp_path)).setup()


def test_missing_frames_are_left_out_and_counted(synth, tmp_path):
    export_disfa(synth, tmp_path, "frames")
    (tmp_path / "Frames_LeftCamera/SN001/000002.png").unlink()
    module = DisfaDataModule(str(tmp_path))
    module.setup()
    assert module.missing_images == 1 and len(module.data[0]) == len(synth) * TINY_DATA["num_frames"] - 1


def test_bad_csv_rows_name_the_line(synth, tmp_path):
    export_disfa(synth, tmp_path, "csv")
    path = tmp_path / "disfa.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[0], "x", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"disfa.csv, line 4: AU values \['x'"):
        DisfaDataModule(str(tmp_path), layout="csv").setup()
    path.write_text("AU1,filename\n1,a.png\n")
    with pytest.raises(DataError, match=r"no column\(s\) \['AU2'"):
        DisfaDataModule(str(tmp_path), layout="csv").setup()


def test_wrong_root_and_config_errors(tmp_path):
    with pytest.raises(DataError, match=r"is not DISFA's layout \(found nothing in .*\); expected, as distributed:\n"
                                        r".*/ActionUnit_Labels/SN001/SN001_au1.txt"):
        DisfaDataModule(str(tmp_path)).setup()
    with pytest.raises(ConfigError, match="action_units: \\[3\\]"):
        DisfaDataModule(str(tmp_path), action_units=[1, 3])
    with pytest.raises(ConfigError, match="split by subject"):
        DisfaDataModule(str(tmp_path), split="identity")


def test_data_check_reports_frames_per_subject_and_au_base_rates(synth, tmp_path):
    export_disfa(synth, tmp_path, "frames")
    (tmp_path / "Frames_LeftCamera/SN002/000031.png").unlink()
    (tmp_path / "Frames_LeftCamera/SN002/000032.png").unlink()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # the command's own parser, in this process (a subprocess costs seconds)
        assert data_command(["check", "disfa", "--root", str(tmp_path)]) == 0
    ok = printed.getvalue()
    per_subject = {int(i): int((np.asarray(synth.identity) == i).sum()) * TINY_DATA["num_frames"]
                   for i in np.unique(synth.identity)}
    for identity, frames in per_subject.items():
        images = frames - 2 if identity == 1 else frames
        assert re.search(rf"SN{identity + 1:03d}\s*│\s*{frames}\s*│\s*{images}\s*│", ok), ok
    labels = np.concatenate([np.loadtxt(tmp_path / f"ActionUnit_Labels/SN{i + 1:03d}/SN{i + 1:03d}_au1.txt", delimiter=",")
                             for i in per_subject])[:, 1]
    served = np.delete(labels, [per_subject[0] + 30, per_subject[0] + 31])  # SN002's frames 31 and 32 have no image
    assert f"AU1 {100 * (served >= 2).mean():.1f}%" in ok
    assert "SN002 left: 2 of 32 labelled frames have no image (frames 31-32), left out" in ok
    assert "the 3 folds are subject-disjoint (6 subjects)" in ok and "OK: 0 error(s), 1 warning(s)" in ok
    (tmp_path / "Frames_LeftCamera/SN003/000004.png").write_bytes(b"not a png")
    report = check_disfa_dataset("disfa", str(tmp_path))
    assert [e for e in report.errors if "unreadable" in e] == report.errors and len(report.errors) == 1
    assert "SN003/000004.png: unreadable" in report.errors[0]
    path = tmp_path / "ActionUnit_Labels/SN003/SN003_au9.txt"
    path.write_text("1,0\n2,x\n")
    with pytest.raises(DataError, match="SN003_au9.txt, line 2"):  # the CLI's exit status 2
        check_disfa_dataset("disfa", str(tmp_path))


def test_a_wrong_layout_names_what_it_found_and_the_option_for_the_csv(synth, tmp_path):
    export_disfa(synth, tmp_path, "csv")
    with pytest.raises(DataError, match=r"found disfa.csv, frames/ in .*expected, as distributed:\n.*ActionUnit_Labels"
                                        r"(.|\n)*disfa.csv is the community CSV layout: read it with "
                                        r"--data.init_args.layout csv"):
        DisfaDataModule(str(tmp_path), layout="authors").setup()
    export_disfa(synth, tmp_path / "own", "frames")
    with pytest.raises(DataError, match=r"holds DISFA's own layout instead: read it with --data.init_args.layout authors"):
        DisfaDataModule(str(tmp_path / "own"), layout="csv").setup()
    with pytest.raises(ConfigError, match="camera: 'middle' is not one of left, right, both"):
        DisfaDataModule(str(tmp_path), camera="middle")


@pytest.mark.parametrize(("line", "message"), [
    ("3,1,2", r"line 3: '3,1,2' is not '<frame>,<intensity>'"),  # a column too many
    ("3", r"line 3: '3' is not '<frame>,<intensity>'"),  # a column short
    ("three,1", r"line 3: 'three,1' is not '<frame>,<intensity>'"),
    ("3,6", r"line 3: intensity '6' is not a number from 0 to 5"),  # no such intensity code
    ("2,1", r"line 3: frame 2 is labelled twice"),
])
def test_fuzzed_label_lines_are_errors_naming_file_and_line(synth, tmp_path, line, message):
    export_disfa(synth, tmp_path, "frames")
    path = tmp_path / "ActionUnit_Labels/SN004/SN004_au17.txt"
    lines = path.read_text().splitlines()
    lines[2] = line
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"SN004_au17.txt, {message}"):
        DisfaDataModule(str(tmp_path)).setup()


def test_unreadable_frames_follow_the_corrupt_policy(synth, tmp_path):
    export_disfa(synth, tmp_path, "frames")
    module = DisfaDataModule(str(tmp_path), image_size=16, batch_size=256)
    module.setup()
    broken = module.data[0][int(module.splits["val"][0])]
    broken.write_bytes(broken.read_bytes()[:40])  # a truncated PNG
    with pytest.warns(UserWarning, match="skipped unreadable image"):
        batch = module.on_after_batch_transfer(next(iter(module.val_dataloader())), 0)
    assert len(batch["id"]) == len(module.splits["val"]) - 1 and module.unreadable.paths == [str(broken)]
    strict = DisfaDataModule(str(tmp_path), image_size=16, corrupt="raise")
    strict.setup()
    with pytest.raises(DataError, match=f"{broken}: not a readable image"):
        strict.dataset("val")[0]
