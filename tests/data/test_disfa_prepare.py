"""DISFA from its distributed videos (data/store/disfa_prepare.py): AffectSynth exported in the authors' layout
(per subject two camera videos and 12 label files), checked (which names the prepare command), prepared with
real MTCNN, then served by the reader with labels equal to the label files frame by frame; frame-count
mismatches, a kill midway, a second run, malformed labels and broken videos."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from affectlab.cli.data import data_command
from affectlab.data.contract import ACTION_UNITS, check_batch
from affectlab.data.media.video import VideoReader, write_video
from affectlab.data.readers.disfa import DisfaDataModule, read_authors
from affectlab.data.registry import prepare_dataset
from affectlab.data.store import disfa_prepare
from affectlab.data.store.disfa_prepare import prepare_disfa
from affectlab.data.synth import SynthConfig, ensure
from affectlab.data.synth.export_disfa import export_disfa
from affectlab.errors import ConfigError, DataError

# 3 subjects of 8 frames; the shaded style, which MTCNN finds most reliably
SMALL = SynthConfig(num_clips=6, num_identities=3, num_frames=4, image_size=64, styles=("shaded",))
FRAMES_PER_SUBJECT = 8
OPTIONS = {"size": 32, "progress": False}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return ensure(tmp_path_factory.mktemp("synth") / "cache", SMALL, progress=False)


@pytest.fixture(scope="module")
def raw(synth, tmp_path_factory):
    root = tmp_path_factory.mktemp("disfa") / "DISFA"
    assert export_disfa(synth, root) == 3 * FRAMES_PER_SUBJECT
    return root


@pytest.fixture(scope="module")
def prepared(raw):
    """The prepare command ``data check`` prints, run as printed (with both cameras and small crops), both
    through the ``affectlab data`` command's own parser in this process (a subprocess costs seconds)."""
    checked = io.StringIO()
    with contextlib.redirect_stdout(checked):
        assert data_command(["check", "disfa", "--root", str(raw)]) == 1
    checked = checked.getvalue()
    command = re.search(r"affectlab data prepare disfa --raw \S+ --out \S+", checked)
    out = raw.parent / "DISFA_prepared"
    assert command is not None and command.group(0) == f"affectlab data prepare disfa --raw {raw} --out {out}", checked
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert data_command([*command.group(0).split()[2:], "--cameras", "both", "--size", "32"]) == 0
    return out, checked, printed.getvalue()


def labels_of(root: Path, subject: str) -> np.ndarray:
    """``[F, 12]`` intensities straight from the label files, frame 1 first."""
    columns = []
    for au in ACTION_UNITS:
        table = np.loadtxt(root / "ActionUnit_Labels" / subject / f"{subject}_au{au}.txt", delimiter=",", ndmin=2)
        assert table[:, 0].tolist() == list(range(1, len(table) + 1))  # DISFA's frames are numbered from 1
        columns.append(table[:, 1])
    return np.stack(columns, axis=1)


def decoded(path: Path) -> np.ndarray:
    return np.stack([frame.image for frame in VideoReader(path)])


def test_the_export_is_the_authors_layout_and_deterministic(synth, raw, tmp_path):
    again = tmp_path / "again"
    export_disfa(synth, again)
    files = sorted(p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again).as_posix() for p in again.rglob("*") if p.is_file())
    assert len(files) == 3 * (12 + 2) and "Videos_RightCamera/RightVideoSN003_comp.avi" in files
    for name in files:
        if name.endswith(".txt"):
            assert (raw / name).read_bytes() == (again / name).read_bytes(), name
        else:  # FFmpeg's encoder: the same frames when decoded
            frames = decoded(raw / name)
            assert frames.shape == (FRAMES_PER_SUBJECT, 128, 160, 3)
            assert np.array_equal(frames, decoded(again / name)), name
    left, right = (decoded(raw / f"Videos_{c}Camera/{c}VideoSN001_comp.avi") for c in ("Left", "Right"))
    assert not np.array_equal(left, right)  # the second camera sees the face elsewhere
    frames_a, frames_b = tmp_path / "frames_a", tmp_path / "frames_b"
    export_disfa(synth, frames_a, "frames")
    export_disfa(synth, frames_b, "frames")
    assert all(p.read_bytes() == (frames_b / p.relative_to(frames_a)).read_bytes() for p in frames_a.rglob("*.png"))
    assert labels_of(frames_a, "SN002").shape == (FRAMES_PER_SUBJECT, 12)


def test_check_on_the_videos_names_the_prepare_command_and_the_counts(raw, prepared):
    _, checked, _ = prepared
    for subject in ("SN001", "SN002", "SN003"):  # label lines, left and right video frames
        assert re.search(rf"{subject}\s*│\s*8\s*│\s*8\s*│\s*8\s*│", checked), checked
    assert "FAILED: 1 error(s), 0 warning(s)" in checked
    with pytest.raises(DataError, match=r"holds DISFA as distributed \(Videos_LeftCamera, Videos_RightCamera, no "
                                        r"Frames_LeftCamera\)(.|\n)*affectlab data prepare disfa --raw .*DISFA --out "
                                        r".*DISFA_prepared\nthen train with --data.init_args.root"):
        DisfaDataModule(str(raw)).setup()


def test_prepared_frames_serve_batches_whose_labels_are_the_label_files(raw, prepared):
    out, _, printed = prepared
    assert "6 videos prepared (0 already done), 0 skipped; 48 frames written" in printed
    assert f"train with --data disfa --data.init_args.root {out} --data.init_args.camera both" in printed
    for camera in ("Left", "Right"):
        assert len(list((out / f"Frames_{camera}Camera/SN002").glob("*.png"))) == FRAMES_PER_SUBJECT
    data = DisfaDataModule(str(out), camera="both", image_size=16, batch_size=4)  # 4 divides every split: none dropped
    data.setup()
    assert len(data.data[0]) == 2 * 3 * FRAMES_PER_SUBJECT and data.missing_images == 0
    labels = {s: labels_of(out, f"SN{s:03d}") for s in (1, 2, 3)}
    served = 0
    for loader in (data.train_dataloader(), data.val_dataloader(), data.test_dataloader()):
        for batch in loader:
            batch = data.on_after_batch_transfer(batch, 0)
            check_batch(batch, data.modalities, data.tasks)
            for k, sample in enumerate(batch["id"].tolist()):
                frame, subject = int(data.sample_frames[sample]), int(batch["subject"][k])
                assert int(batch["domain"][k]) == data.sample_cameras[sample]  # 0 left, 1 right
                assert data.data[0][sample].name == f"{frame:06d}.png"
                assert np.array_equal(batch["targets"]["au_intensity"][k].numpy(), labels[subject][frame - 1])
                served += 1
    assert served == 2 * 3 * FRAMES_PER_SUBJECT
    report = (out / "prepare_report.json").read_text()
    assert '"face"' in report and '"mismatches": []' in report


def test_a_second_run_redoes_nothing(raw, prepared):
    out = prepared[0]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    report = prepare_disfa("disfa", str(raw), str(out), cameras="both", **OPTIONS)
    assert report["summary"]["views"] == 6 and report["summary"]["written"] == 48
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == before
    with pytest.raises(ConfigError, match=r"SN001 was prepared with \{'size': 32.*not \{'size': 48"):
        prepare_disfa("disfa", str(raw), str(out), cameras="both", **{**OPTIONS, "size": 48})


def test_a_kill_midway_leaves_no_half_subject_and_resumes_to_the_same_frames(raw, prepared, tmp_path, monkeypatch):
    out, real, written = tmp_path / "out", disfa_prepare._png, []

    def killed(crop):
        written.append(1)
        if len(written) == FRAMES_PER_SUBJECT + 3:  # three frames into the second subject
            raise KeyboardInterrupt
        return real(crop)

    monkeypatch.setattr(disfa_prepare, "_png", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare_disfa("disfa", str(raw), str(out), **OPTIONS)
    monkeypatch.undo()
    assert sorted(p.name for p in (out / "Frames_LeftCamera").iterdir()) == ["SN001", "SN002.partial"]
    scan = read_authors(out, ACTION_UNITS)  # one complete subject, not half of a second
    assert set(scan.subjects) == {1} and scan.problems() == ["SN002 left: no frames folder, left out"]
    report = prepare_disfa("disfa", str(raw), str(out), **OPTIONS)
    assert sorted(p.name for p in (out / "Frames_LeftCamera").iterdir()) == ["SN001", "SN002", "SN003"]
    assert report["summary"]["written"] == 3 * FRAMES_PER_SUBJECT
    whole = prepared[0] / "Frames_LeftCamera"
    for path in (out / "Frames_LeftCamera").rglob("*.png"):  # the same crops as the run never interrupted
        assert path.read_bytes() == (whole / path.relative_to(out / "Frames_LeftCamera")).read_bytes(), path


def test_videos_whose_frame_count_differs_from_their_labels_are_reported_with_both_counts(raw, tmp_path):
    copy = tmp_path / "DISFA"
    shutil.copytree(raw, copy)
    for subject, keep in (("SN001", 5), ("SN002", 10)):  # shorter, longer
        video = copy / f"Videos_LeftCamera/LeftVideo{subject}_comp.avi"
        frames = decoded(video)
        write_video(video, np.concatenate([frames, frames])[:keep], fps=20, codec="mpeg4")
    report = prepare_disfa("disfa", str(copy), str(tmp_path / "out"), **OPTIONS)
    assert report["mismatches"] == [
        (f"{copy}/Videos_LeftCamera/LeftVideoSN001_comp.avi: 5 frames decoded, 8 label lines; kept the common first "
         "5 frames, labelled frames 6-8 have no image"),
        (f"{copy}/Videos_LeftCamera/LeftVideoSN002_comp.avi: 10 frames decoded, 8 label lines; kept the common first "
         "8 frames, video frames 9-10 have no label")]
    assert report["subjects"]["SN001"]["left"]["written"] == 5 and report["subjects"]["SN002"]["left"]["written"] == 8
    scan = read_authors(tmp_path / "out", ACTION_UNITS)
    assert scan.problems() == ["SN001 left: 3 of 8 labelled frames have no image (frames 6-8), left out"]
    assert len(scan.files) == 5 + 8 + 8


def test_frames_without_a_face_follow_the_no_face_policy(raw, tmp_path):
    copy = tmp_path / "DISFA"
    shutil.copytree(raw, copy)
    frames = decoded(copy / "Videos_LeftCamera/LeftVideoSN001_comp.avi")
    frames[2:5] = 90  # frames 3-5 show no face
    write_video(copy / "Videos_LeftCamera/LeftVideoSN001_comp.avi", frames, fps=20, codec="mpeg4")
    for subject in ("SN002", "SN003"):  # only SN001 is prepared
        shutil.rmtree(copy / "ActionUnit_Labels" / subject)
    skip = prepare_disfa("disfa", str(copy), str(tmp_path / "skip"), no_face="skip", chunk=4, **OPTIONS)
    record = skip["subjects"]["SN001"]["left"]
    assert record["dropped"] >= 3 and record["written"] == FRAMES_PER_SUBJECT - record["dropped"]
    written = sorted(int(p.stem) for p in (tmp_path / "skip/Frames_LeftCamera/SN001").glob("*.png"))
    assert not {3, 4, 5} & set(written) and len(written) == record["written"]  # numbered as the video's frames
    scan = read_authors(tmp_path / "skip", ACTION_UNITS)
    assert scan.missing["SN001 left"] == sorted(set(range(1, 9)) - set(written))
    nearest = prepare_disfa("disfa", str(copy), str(tmp_path / "nearest"), chunk=4, **OPTIONS)["subjects"]["SN001"]["left"]
    assert nearest["written"] == FRAMES_PER_SUBJECT and nearest["nearest"] + nearest["whole"] >= 3
    crop = np.asarray(Image.open(tmp_path / "nearest/Frames_LeftCamera/SN001/000004.png"))
    assert crop.shape == (32, 32, 3) and np.abs(crop[8:24, 8:24].astype(int) - 90).max() <= 2  # blank, at a face's box


def test_malformed_labels_and_broken_videos_are_skipped_and_the_others_prepared(raw, tmp_path):
    copy = tmp_path / "DISFA"
    shutil.copytree(raw, copy)
    labels = copy / "ActionUnit_Labels/SN001/SN001_au12.txt"
    labels.write_text(labels.read_text().replace("3,", "3;", 1))
    (copy / "Videos_LeftCamera/LeftVideoSN002_comp.avi").write_bytes(b"RIFF....AVI garbage" * 50)
    video = copy / "Videos_LeftCamera/LeftVideoSN003_comp.avi"
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])  # a download cut in half: AVI's index is lost
    (copy / "Videos_RightCamera/RightVideoSN003_comp.avi").unlink()
    report = prepare_disfa("disfa", str(copy), str(tmp_path / "out"), cameras="both", **OPTIONS)
    skipped = {(s["subject"], s["camera"]): s["reason"] for s in report["skipped"]}
    assert sorted(skipped) == [("SN001", "labels"), ("SN002", "left"), ("SN003", "left"), ("SN003", "right")]
    assert "SN001_au12.txt, line 3: '3;" in skipped["SN001", "labels"]
    assert "LeftVideoSN002_comp.avi: holds no video stream" in skipped["SN002", "left"]
    assert "LeftVideoSN003_comp.avi: cannot open as a video" in skipped["SN003", "left"]
    assert "RightVideoSN003_comp.avi is missing" in skipped["SN003", "right"]
    assert report["summary"]["views"] == 1 and report["summary"]["skipped"] == 4
    assert report["subjects"]["SN002"]["right"]["written"] == FRAMES_PER_SUBJECT  # the other camera still prepared
    assert not (tmp_path / "out/ActionUnit_Labels/SN001").exists()  # malformed labels are not copied
    scan = read_authors(tmp_path / "out", ACTION_UNITS, camera="both")
    assert scan.problems() == ["SN002 left: no frames folder, left out", "SN003 left: no frames folder, left out",
                               "SN003 right: no frames folder, left out"]
    assert set(scan.subjects) == {2} and len(scan.files) == FRAMES_PER_SUBJECT
    with pytest.raises(DataError, match=r"none of the 3 subjects under .* could be prepared; the first skipped: .*"
                                        "SN001_au12.txt, line 3"):
        prepare_disfa("disfa", str(copy), str(tmp_path / "none"), **OPTIONS)  # the left camera only: nothing


def test_options_for_other_data_sets_are_refused(raw, tmp_path):
    with pytest.raises(ConfigError, match=r"--num-frames only apply to video data sets \(caer, meld, voxceleb2\), not "
                                          "to disfa"):
        prepare_dataset("disfa", raw, tmp_path / "out", num_frames=4)
    with pytest.raises(ConfigError, match="--cameras: 'top' is not one of left, right, both"):
        prepare_dataset("disfa", raw, tmp_path / "out", cameras="top")
    with pytest.raises(DataError, match=r"no .*/ActionUnit_Labels; --raw is DISFA's folder as distributed"):
        prepare_disfa("disfa", str(tmp_path), str(tmp_path / "out"))
