"""AffectSynth: determinism, layout, labels, AU geometry, and a cache that is never read when damaged."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from affectlab.data.contract import ACTION_UNITS, EMOTIONS
from affectlab.data.synth import (
    RENDER_STYLES, VOCAB, AffectSynthCacheError, SynthConfig, decode, encode, ensure, generate, load, preview,
    synth_command,
)
from affectlab.data.synth import faces, generator
from affectlab.data.synth.config import array_layout
from affectlab.data.synth.expressions import CORE_AUS, OPTIONAL_AUS, ExpressionProfile, au_trajectory, sample_profile
from affectlab.data.synth.faces import render_clip, sample_face, sample_pose

# Small enough to generate in well under a second: 24 clips of 4 frames of 32x32, half a second of 4 kHz audio.
TINY = SynthConfig(num_clips=24, num_identities=6, num_frames=4, image_size=32, sample_rate=4000, audio_seconds=0.5)


def digests(path: Path) -> dict[str, str]:
    return {name: entry["sha256"] for name, entry in json.loads((path / "manifest.json").read_text())["files"].items()}


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synth") / "tiny", TINY, progress=False)


@pytest.fixture
def cache_copy(tiny_cache: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny cache, for tests that damage it."""
    return Path(shutil.copytree(tiny_cache, tmp_path / "tiny"))


def test_same_seed_gives_same_bytes(tiny_cache: Path, tmp_path: Path):
    again = generate(tmp_path / "again", TINY, progress=False)
    assert digests(again) == digests(tiny_cache)
    assert (again / "manifest.json").read_bytes() == (tiny_cache / "manifest.json").read_bytes()


def test_worker_processes_give_the_same_bytes(tiny_cache: Path, tmp_path: Path):
    config = SynthConfig(**{**TINY.to_dict(), "num_clips": 80})  # two chunks, one per worker
    one, two = generate(tmp_path / "one", config, progress=False), generate(tmp_path / "two", config, False, 2)
    assert digests(one) == digests(two)


def test_different_seed_gives_different_data(tiny_cache: Path, tmp_path: Path):
    other = digests(generate(tmp_path / "other", SynthConfig(**{**TINY.to_dict(), "seed": 1}), progress=False))
    ours = digests(tiny_cache)
    for name in ("frames", "audio", "text", "au_intensity", "sentiment", "identity", "emotion"):
        assert other[name] != ours[name], name


def test_clips_do_not_depend_on_the_data_set_size(tmp_path: Path):
    small = load(generate(tmp_path / "n10", SynthConfig(**{**TINY.to_dict(), "num_clips": 10}), progress=False))
    large = load(generate(tmp_path / "n20", SynthConfig(**{**TINY.to_dict(), "num_clips": 20}), progress=False))
    for name in array_layout(TINY):
        np.testing.assert_array_equal(small[name], large[name][:10], err_msg=name)


def test_shapes_dtypes_and_ranges(tiny_cache: Path):
    data = load(tiny_cache)
    for name, (shape, dtype) in array_layout(TINY).items():
        assert data[name].shape == shape and data[name].dtype == dtype, name
        assert not data[name].flags.writeable, name
    assert data.frames.shape == (24, 4, 32, 32, 3) and data.audio.shape == (24, 2000)
    assert data.frames.std() > 10  # not blank
    assert set(np.unique(data.domain)) <= set(range(len(RENDER_STYLES)))
    assert 0 <= data.au_intensity.min() and data.au_intensity.max() <= 5
    assert np.all(np.abs(data.sentiment) <= 3)
    assert np.all(np.abs(data.valence) <= 1) and np.all(np.abs(data.arousal) <= 1)
    assert np.abs(data.audio).max() > 1000  # audible, in int16 units
    for ids, length in zip(data.text, data.text_len):
        assert 0 < length <= TINY.max_text_len
        assert np.all(ids[:length] > 0) and np.all(ids[length:] == 0) and np.all(ids < len(VOCAB))


def test_every_identity_and_emotion_appears(tiny_cache: Path):
    data = load(tiny_cache)
    assert set(data.identity.tolist()) == set(range(TINY.num_identities))
    assert set(data.emotion.tolist()) == set(range(len(EMOTIONS)))
    assert np.bincount(data.emotion).max() - np.bincount(data.emotion).min() <= 1  # dealt in rounds


def test_apex_aus_follow_the_emfacs_prototypes(tmp_path: Path):
    data = load(generate(tmp_path / "aus", SynthConfig(**{**TINY.to_dict(), "num_clips": 140}), progress=False))
    apex = data.au_intensity[np.arange(len(data)), data.au_intensity.sum(axis=2).argmax(axis=1)]  # (N, 12)
    for e, name in enumerate(EMOTIONS):
        mean = apex[data.emotion == e].mean(axis=0)
        core = [ACTION_UNITS.index(au) for au in CORE_AUS[name]]
        others = [i for i, au in enumerate(ACTION_UNITS) if au not in CORE_AUS[name] + OPTIONAL_AUS[name]]
        if core:
            assert mean[core].min() > 1.0 and mean[core].min() > 2 * mean[others].max(), name
        else:
            assert mean.max() < 0.5, name  # neutral: only the identities' resting AUs


def test_trajectory_rises_to_the_apex_and_stays_in_range():
    profile = ExpressionProfile(gain=np.ones(12), rest=np.zeros(12))
    for seed in range(50):
        au = au_trajectory(EMOTIONS.index("surprise"), profile, 8, np.random.default_rng(seed), (5.0, 5.0), 0.0)
        assert au.shape == (8, 12) and au.dtype == np.float32
        assert 0 <= au.min() and au.max() <= 5
        assert au[:, ACTION_UNITS.index(26)].max() >= 5 * 0.75  # core weight >= 0.75, apex plateau on a frame
    idle = au_trajectory(0, sample_profile(np.random.default_rng(0)), 8, np.random.default_rng(0))
    assert np.ptp(idle, axis=0).max() < 1.0  # neutral: no trajectory, only resting AUs and jitter


@pytest.mark.parametrize("unit", ACTION_UNITS)
def test_each_au_changes_the_face_more_at_higher_intensity(unit: int):
    face = sample_face(np.random.default_rng(3))
    au = np.zeros((3, 12), np.float32)
    au[:, ACTION_UNITS.index(unit)] = [0.0, 2.5, 5.0]
    frames = render_clip(face, au, sample_pose(np.random.default_rng(0), 3, 0.0), "shaded", 64,
                         np.random.default_rng(0), noise=0.0).astype(float)
    half, full = np.abs(frames[1] - frames[0]).sum(), np.abs(frames[2] - frames[0]).sum()
    assert 0 < half < full, (unit, half, full)


@pytest.mark.parametrize("style", RENDER_STYLES)
def test_features_never_leave_their_drawing_window(style: str, monkeypatch):
    face, au = sample_face(np.random.default_rng(5)), np.full((4, 12), 5.0, np.float32)
    pose = sample_pose(np.random.default_rng(1), 4, 2.0)  # twice the default jitter
    windowed = render_clip(face, au, pose, style, 48, np.random.default_rng(0))
    monkeypatch.setattr(faces, "_feature_window", lambda pose, size: (slice(None), slice(None)))
    np.testing.assert_array_equal(render_clip(face, au, pose, style, 48, np.random.default_rng(0)), windowed)


def test_load_detects_a_truncated_file_and_ensure_regenerates(cache_copy: Path, tiny_cache: Path, caplog):
    file = cache_copy / "audio.npy"
    with open(file, "r+b") as f:
        f.truncate(file.stat().st_size - 100)
    with pytest.raises(AffectSynthCacheError, match=r"audio\.npy is truncated"):
        load(cache_copy)
    with caplog.at_level(logging.WARNING):
        data = ensure(cache_copy, TINY, progress=False)
    assert "truncated" in caplog.text
    assert digests(data.path) == digests(tiny_cache)
    load(cache_copy)  # whole again


def test_load_detects_a_flipped_byte_and_ensure_never_reads_it(cache_copy: Path, tiny_cache: Path, caplog):
    file = cache_copy / "frames.npy"
    raw = bytearray(file.read_bytes())
    raw[-1000] ^= 0x01
    file.write_bytes(bytes(raw))
    with pytest.raises(AffectSynthCacheError, match=r"frames\.npy fails its checksum"):
        load(cache_copy)
    with caplog.at_level(logging.WARNING):
        data = ensure(cache_copy, TINY, progress=False)
    assert "checksum" in caplog.text
    np.testing.assert_array_equal(data.frames, load(tiny_cache).frames)


def test_load_names_a_missing_file(cache_copy: Path):
    (cache_copy / "text.npy").unlink()
    with pytest.raises(AffectSynthCacheError, match=r"text\.npy is missing"):
        load(cache_copy)
    (cache_copy / "manifest.json").unlink()
    with pytest.raises(AffectSynthCacheError, match="manifest.json is missing"):
        load(cache_copy)


def test_ensure_reuses_a_valid_cache(cache_copy: Path, monkeypatch):
    monkeypatch.setattr(generator, "generate", lambda *a, **k: pytest.fail("regenerated a valid cache"))
    assert ensure(cache_copy, TINY, progress=False).config == TINY


def test_a_config_change_triggers_regeneration(cache_copy: Path, caplog):
    changed = SynthConfig(**{**TINY.to_dict(), "p_neutral_text": 0.5})
    with caplog.at_level(logging.WARNING):
        data = ensure(cache_copy, changed, progress=False)
    assert "p_neutral_text" in caplog.text
    assert data.config == changed and load(cache_copy).config == changed


def test_interrupted_generation_leaves_nothing_at_the_final_path(tmp_path: Path, monkeypatch):
    real = generator.make_clip

    def failing(config, index):
        if index == 70:
            raise KeyboardInterrupt
        return real(config, index)

    monkeypatch.setattr(generator, "make_clip", failing)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "cache", SynthConfig(**{**TINY.to_dict(), "num_clips": 100}), progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the cache nor the temporary directory


def test_interrupted_regeneration_keeps_the_old_cache(cache_copy: Path, monkeypatch):
    before = digests(cache_copy)
    monkeypatch.setattr(generator, "make_clip", lambda config, index: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        ensure(cache_copy, SynthConfig(**{**TINY.to_dict(), "seed": 7}), progress=False)
    assert digests(cache_copy) == before and load(cache_copy).config == TINY
    assert sorted(p.name for p in cache_copy.parent.iterdir()) == ["tiny"]


def test_refuses_to_overwrite_a_directory_that_is_not_a_cache(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(AffectSynthCacheError, match="not an AffectSynth cache"):
        generate(tmp_path, TINY, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_config_validation():
    with pytest.raises(ValueError, match="styles"):
        SynthConfig(styles=("watercolour",))
    assert SynthConfig.from_dict(TINY.to_dict()) == TINY


def test_vocabulary_round_trip():
    assert VOCAB[:2] == ("<pad>", "<unk>") and len(set(VOCAB)) == len(VOCAB)
    ids = encode("i am so happy about the zebra".split(), length=10)
    assert ids.dtype == np.int32 and ids.shape == (10,)
    assert ids[6] == 1 and np.all(ids[7:] == 0)
    assert decode(ids) == ["i", "am", "so", "happy", "about", "the", "<unk>"]


def test_preview_and_command(tiny_cache: Path, tmp_path: Path, capsys):
    png = preview(tiny_cache, tmp_path / "sheet.png", n=4)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = synth_command(str(tmp_path / "cmd"), num_clips=8, num_identities=4, num_frames=2, image_size=32,
                        progress=False)
    assert load(out).config.num_clips == 8
    assert str(out) in capsys.readouterr().out.replace("\n", "")
