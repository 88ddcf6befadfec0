"""Generates AffectSynth: seeded multi-modal affect clips with full ground truth, cached as memory-mapped arrays.

Every clip is a pure function of ``(config, clip index)``: its random draws come from
``np.random.default_rng([seed, index])``, its identity and emotion from shuffled rounds that depend on the seed
and the round only, and identities from their own seeded streams. So generation is order-independent, any
slice can be generated in any process, and the same config gives the same bytes.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from affectlab.data.contract import EMOTIONS
from affectlab.data.synth import audio, expressions, faces, text
from affectlab.data.synth.cache import (
    GENERATOR_VERSION, MANIFEST, AffectSynthArrays, AffectSynthCacheError, load, read_manifest, write_manifest,
)
from affectlab.data.synth.config import SynthConfig, array_layout
from affectlab.data.synth.faces import RENDER_STYLES

log = logging.getLogger(__name__)

# Tags that keep the seeded streams for identities and for the dealing of identities/emotions apart from the
# per-clip streams ``[seed, index]`` (a different entropy length and a tag no clip index reaches first).
_IDENTITY_STREAM = 0x1D_E47
_DEAL_STREAM = 0xDEA1
_CHUNK = 64  # clips generated between two writes to the memory maps


@dataclass(frozen=True)
class Identity:
    """One person: how they look, how they express and how they sound."""

    face: faces.Face
    expression: expressions.ExpressionProfile
    voice: audio.Voice


@lru_cache(maxsize=4096)
def _identity(seed: int, index: int, variation: float) -> Identity:
    rng = np.random.default_rng([seed, _IDENTITY_STREAM, index])
    return Identity(face=faces.sample_face(rng), expression=expressions.sample_profile(rng, variation),
                    voice=audio.sample_voice(rng))


def _deal(seed: int, what: int, count: int, index: int) -> int:
    """Item of clip ``index`` when items ``0..count-1`` are dealt in rounds, each round freshly shuffled.

    Every item occurs once per round of ``count`` clips, so every identity gets clips and emotions stay
    balanced, while the shuffle depends only on (seed, round): clip i is the same in a cache of any size.
    """
    round_, position = divmod(index, count)
    return int(np.random.default_rng([seed, _DEAL_STREAM, what, round_]).permutation(count)[position])


def clip_identities(config: SynthConfig) -> np.ndarray:
    """``[N]`` identity of every clip of ``config``, dealt as ``make_clip`` deals them, without rendering one
    (so a data set's split and batch counts can be checked before it is generated)."""
    rounds = -(-config.num_clips // config.num_identities)
    dealt = [np.random.default_rng([config.seed, _DEAL_STREAM, 0, r]).permutation(config.num_identities)
             for r in range(rounds)]
    return np.concatenate(dealt)[: config.num_clips].astype(np.int64) if dealt else np.zeros(0, np.int64)


def make_clip(config: SynthConfig, index: int) -> dict[str, np.ndarray | int | float]:
    """Generates clip ``index`` of ``config``: one value per array of ``array_layout``, without the N axis."""
    c = config
    identity_index = _deal(c.seed, 0, c.num_identities, index)
    emotion = _deal(c.seed, 1, len(EMOTIONS), index)
    person = _identity(c.seed, identity_index, c.identity_variation)
    rng = np.random.default_rng([c.seed, index])
    # The order of the draws below is part of the format: changing it changes every clip.
    style = c.styles[rng.integers(len(c.styles))]
    valence, arousal = expressions.clip_affect(emotion, rng, c.affect_jitter)
    au = expressions.au_trajectory(emotion, person.expression, c.num_frames, rng, c.intensity_range)
    pose = faces.sample_pose(rng, c.num_frames, c.pose_jitter)
    frames = faces.render_clip(person.face, au, pose, style, c.image_size, rng, c.face_noise)
    wave = audio.synthesize(valence, arousal, person.voice, rng, c.sample_rate, c.audio_seconds, c.audio_noise,
                            c.prosody_jitter)
    words = text.utterance(emotion, rng, c.p_neutral_text, c.p_conflict)
    return {
        "frames": frames, "audio": wave, "text": text.encode(words, c.max_text_len),
        "text_len": min(len(words), c.max_text_len), "emotion": emotion, "au_intensity": au,
        "sentiment": text.sentiment(valence, rng, c.sentiment_noise), "valence": valence, "arousal": arousal,
        "identity": identity_index, "domain": RENDER_STYLES.index(style),
    }


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress]:
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not enabled, transient=False) as bar:
        yield bar


def _make_chunk(config: SynthConfig, start: int, stop: int) -> dict[str, np.ndarray]:
    """Clips ``start..stop-1`` stacked per array (module level, so worker processes can run it)."""
    clips = [make_clip(config, i) for i in range(start, stop)]
    return {name: np.stack([np.asarray(clip[name]) for clip in clips]) for name in array_layout(config)}


def _write_arrays(directory: Path, config: SynthConfig, progress: bool, workers: int) -> None:
    """Fills one memory-mapped ``.npy`` per array, a chunk of clips at a time, so memory stays small."""
    maps = {name: np.lib.format.open_memmap(directory / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
            for name, (shape, dtype) in array_layout(config).items()}
    starts = list(range(0, config.num_clips, _CHUNK))
    stops = [min(start + _CHUNK, config.num_clips) for start in starts]
    # Spawned, not forked, workers: forking a process that holds torch or BLAS threads can deadlock.
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers > 1 else None
    try:
        chunks = pool.map(_make_chunk, repeat(config), starts, stops) if pool else \
            map(_make_chunk, repeat(config), starts, stops)
        with _progress(progress) as bar:
            task = bar.add_task("AffectSynth clips", total=config.num_clips)
            for start, stop, chunk in zip(starts, stops, chunks):
                for name, array in maps.items():
                    array[start:stop] = chunk[name]
                bar.advance(task, stop - start)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    for array in maps.values():
        array.flush()
    del maps  # close the maps before the files are hashed and renamed


def _is_replaceable(path: Path) -> bool:
    """Whether ``path`` may be overwritten: absent, empty, or holding nothing but cache files."""
    if not path.exists():
        return True
    known = {MANIFEST} | {f"{name}.npy" for name in array_layout(SynthConfig())}
    return path.is_dir() and all(entry.name in known for entry in path.iterdir())


def generate(out_dir: str | Path, config: SynthConfig | None = None, progress: bool = True,
             workers: int = 1) -> Path:
    """Generates a cache at ``out_dir``, replacing a previous cache there.

    The arrays are written into a temporary sibling directory and renamed into place once the manifest is
    written, so ``out_dir`` never holds a partial cache, even when generation is interrupted.

    Args:
        out_dir: the cache directory.
        config: what to generate; the defaults when omitted.
        progress: show a progress bar.
        workers: processes generating clips; the bytes are the same for any number.

    Returns:
        ``out_dir`` as a ``Path``.

    Raises:
        AffectSynthCacheError: ``out_dir`` exists and holds something other than an AffectSynth cache.
    """
    config = config or SynthConfig()
    out = Path(out_dir)
    if not _is_replaceable(out):
        raise AffectSynthCacheError(f"{out} exists and is not an AffectSynth cache; refusing to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = out.parent / f".{out.name}.tmp-{tag}"
    tmp.mkdir()
    try:
        _write_arrays(tmp, config, progress, workers)
        write_manifest(tmp, config)
        if out.exists():  # a directory can only be renamed onto a missing path: move the old one aside first
            old = out.parent / f".{out.name}.old-{tag}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a no-op after the rename
    return out


def _why_stale(path: Path, config: SynthConfig) -> str | None:
    """Why the cache at ``path`` can't serve ``config`` (checksums included), or None when it can."""
    if not path.exists():
        return "does not exist"
    try:
        manifest = read_manifest(path)
        if manifest["generator_version"] != GENERATOR_VERSION:
            return f"was made by {manifest['generator_version']}, this is {GENERATOR_VERSION}"
        stored = manifest["config"]
        changed = [f"{k}={stored.get(k)!r}->{v!r}" for k, v in config.to_dict().items() if stored.get(k) != v]
        if changed or set(stored) != set(config.to_dict()):
            return "was made with another config (" + ", ".join(changed or ["different fields"]) + ")"
        load(path, verify=True)
    except AffectSynthCacheError as err:
        return f"is invalid: {err}"
    return None


def ensure(path: str | Path, config: SynthConfig | None = None, progress: bool = True,
           workers: int = 1) -> AffectSynthArrays:
    """The cache at ``path`` for ``config``: reused when valid, otherwise (re)generated with a warning saying why.

    A cache is reused only if its manifest's config and generator version match and every file passes its
    size and checksum checks; a truncated or tampered cache is never read, it is replaced.

    Args:
        path: the cache directory.
        config: what the cache must hold; the defaults when omitted.
        progress: show a progress bar when generating.
        workers: processes generating clips, when generating.
    """
    config = config or SynthConfig()
    path = Path(path)
    reason = _why_stale(path, config)
    if reason is None:
        return load(path, verify=False)  # just verified by _why_stale
    # A first generation is expected; replacing an existing cache is worth a warning.
    (log.info if not path.exists() else log.warning)("AffectSynth cache %s %s; generating it", path, reason)
    generate(path, config, progress, workers)
    return load(path, verify=False)  # just written


def synth_command(
    out: str,
    num_clips: int = 1200,
    seed: int = 0,
    num_identities: int = 60,
    num_frames: int = 8,
    image_size: int = 64,
    p_neutral_text: float = 0.35,
    workers: int = 1,
    progress: bool = True,
) -> Path:
    """Generates AffectSynth into a directory, or reuses the cache already there if it matches.

    Wired as ``affectlab data synth --out DIR --num-clips N --seed S``; prints where it wrote and what.

    Args:
        out: the cache directory.
        num_clips: clips to generate.
        seed: the seed; the same seed and sizes give the same bytes.
        num_identities: people the clips are dealt to.
        num_frames: video frames per clip.
        image_size: frame height and width in pixels.
        p_neutral_text: probability that an emotional clip's utterance is neutral.
        workers: processes generating clips (the bytes do not depend on it).
        progress: show a progress bar.

    Returns:
        The cache directory.
    """
    config = SynthConfig(num_clips=num_clips, seed=seed, num_identities=num_identities, num_frames=num_frames,
                         image_size=image_size, p_neutral_text=p_neutral_text)
    start = time.perf_counter()
    arrays = ensure(out, config, progress, workers)
    size = sum(f.stat().st_size for f in arrays.path.iterdir()) / 2**20
    console = Console()
    console.print(f"AffectSynth v1 at [bold]{arrays.path}[/bold] ({size:.1f} MiB, {time.perf_counter() - start:.1f} s):"
                  f" {num_clips} clips of {num_identities} identities, seed {seed}")
    for name, (shape, dtype) in array_layout(config).items():
        console.print(f"  {name + '.npy':<18} {dtype.name:<8} {list(shape)}")
    return arrays.path
