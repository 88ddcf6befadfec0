"""AffectSynthDataModule: the embedded synthetic benchmark served in the batch contract, split by identity.

The cache is generated once per configuration under ``root`` (``affectsynth-v1-<config hash>``), verified
by checksum whenever it is opened, and memory-mapped: samples are read on demand, never all loaded.

Label efficiency (``label_fraction``): only a stratified, seeded subset of the train split keeps its labels;
the other train samples are dropped or served with every ``target_mask`` False (semi-supervised methods).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from affectlab.data.contract import ACTION_UNITS, AU_OCCURRENCE_THRESHOLD, EMOTIONS, mask_key
from affectlab.data.samplers import IdentityBatchSampler, experiment_seed, loader_generator
from affectlab.data.base import BaseDataModule
from affectlab.data.loaders import split_loader
from affectlab.data.splits import SPLIT_KINDS, SPLITS, cross_validation_split, identity_split, stratified_subset
from affectlab.data.synth import AffectSynthArrays, SynthConfig, decode, ensure, load
from affectlab.errors import ConfigError, DataError

SYNTH_MODALITIES = ("video", "audio", "text")
SYNTH_TASKS = ("emotion", "au", "au_intensity", "sentiment")
UNLABELLED_MODES = ("drop", "mask", "separate")
SAMPLE_UNITS = ("clip", "frame")


class AffectSynthDataset(Dataset):
    """One sample per clip, or per frame, as a dict in the batch contract (``affectlab.data.contract``).

    Args:
        arrays: the opened cache.
        indices: clip index of each clip.
        modalities: the modalities to serve.
        labelled: per clip, whether it carries its labels (``target_mask``); None: every clip does.
        sample_unit: ``clip`` (a sample is a clip, AU targets its apex) or ``frame`` (a sample is one frame of
            a clip, ``video`` ``[1, 3, H, W]``, AU targets that frame's own intensities; video only). Items
            run frame-fastest: item ``i`` is frame ``i % T`` of clip ``indices[i // T]``.
    """

    def __init__(
        self,
        arrays: AffectSynthArrays,
        indices: np.ndarray,
        modalities: tuple[str, ...],
        labelled: np.ndarray | None = None,
        sample_unit: str = "clip",
    ) -> None:
        if sample_unit not in SAMPLE_UNITS:
            raise ValueError(f"sample_unit must be one of {SAMPLE_UNITS}, got {sample_unit!r}")
        self.arrays = arrays
        self.indices = indices
        self.modalities = modalities
        self.labelled = labelled
        self.sample_unit = sample_unit
        self.per_clip = arrays.config.num_frames if sample_unit == "frame" else 1

    def __len__(self) -> int:
        return len(self.indices) * self.per_clip

    def clip_of_item(self) -> np.ndarray:
        """Clip index of every item, ``[len(self)]``."""
        return np.repeat(self.indices, self.per_clip)

    def __getitem__(self, item: int) -> dict[str, Any]:
        clip, frame = divmod(item, self.per_clip)
        n = int(self.indices[clip])
        a = self.arrays
        sample: dict[str, Any] = {
            "id": n * self.per_clip + frame,
            "subject": int(a.identity[n]),
            "domain": int(a.domain[n]),
        }
        if "video" in self.modalities:
            window = slice(frame, frame + 1) if self.sample_unit == "frame" else slice(None)
            frames = torch.from_numpy(np.array(a.frames[n, window]))  # (T, H, W, 3) uint8, copied out of the map
            sample["video"] = frames.permute(0, 3, 1, 2).float().div_(255.0)  # (T, 3, H, W) in [0, 1]
            sample[mask_key("video")] = torch.ones(frames.shape[0], dtype=torch.bool)
        if "audio" in self.modalities:
            waveform = torch.from_numpy(a.audio[n].astype(np.float32) / 32767.0)  # (S,)
            sample["audio"] = waveform
            sample[mask_key("audio")] = torch.ones(waveform.shape[0], dtype=torch.bool)
        if "text" in self.modalities:
            ids = torch.from_numpy(a.text[n].astype(np.int64))  # (L,)
            sample["text"] = ids
            sample[mask_key("text")] = torch.arange(ids.shape[0]) < int(a.text_len[n])
        if self.sample_unit == "frame":
            apex = torch.from_numpy(np.array(a.au_intensity[n, frame]))  # (12,) this frame's intensities
        else:
            apex = torch.from_numpy(a.au_intensity[n].max(axis=0))  # (12,) the clip's peak intensity per AU
        sample["targets"] = {
            "emotion": int(a.emotion[n]),
            "au": (apex >= AU_OCCURRENCE_THRESHOLD).float(),
            "au_intensity": apex,
            "sentiment": float(a.sentiment[n]),
        }
        # The targets stay in the sample (fixed shapes for collation); the mask says whether a method may read them.
        labelled = True if self.labelled is None else bool(self.labelled[clip])
        sample["target_mask"] = {task: labelled for task in SYNTH_TASKS}
        return sample


class AffectSynthDataModule(BaseDataModule):
    """AffectSynth, generated on first use and split into train/val/test by identity.

    Args:
        root: folder holding generated caches; each configuration gets its own subfolder.
        num_clips: clips to generate.
        num_identities: people; no identity appears in two splits.
        num_frames: frames per clip.
        image_size: frame height and width.
        synth_seed: seed of the generator (the data), independent of the training seed.
        synth_options: further ``SynthConfig`` knobs (difficulty: ``face_noise``, ``p_neutral_text``, ...).
        modalities: the modalities to serve; None serves video, audio and text.
        split_fractions: fractions of identities for train, val and test (``split: identity``).
        split_seed: seed of the split (and of the fold assignment).
        split: ``identity`` (one identity-disjoint train/val/test split), or a cross-validation fold:
            ``kfold`` (subject-disjoint, ``num_folds`` folds), ``loso`` (leave one subject out), ``lodo``
            (leave one render style out, on unseen identities; MIRO's set-up). See ``data/splits.py``.
        fold: which fold is the test split (cross-validation kinds).
        num_folds: folds of ``kfold`` (3 is DISFA's convention).
        label_fraction: fraction of each ``emotion`` class of the train split that keeps its labels (at least
            one sample per class; see ``stratified_subset``); 1 labels everything. Val and test keep all labels.
        label_seed: seed of the labelled subset, independent of the split and training seeds.
        unlabelled: what happens to the other train samples: ``drop`` leaves them out of the train loader,
            ``mask`` serves them with ``target_mask[task]`` False for every task, ``separate`` serves each train
            batch as ``{"labelled": batch, "unlabelled": batch}`` (FixMatch), the unlabelled part
            ``unlabelled_ratio`` times as large, the labelled loader cycling.
        unlabelled_ratio: unlabelled samples per labelled one in a ``separate`` batch (FixMatch's mu).
        batch_size: samples per batch.
        clips_per_identity: train batches made of this many clips of each of ``batch_size / clips_per_identity``
            identities (see ``IdentityBatchSampler``: cross-modal self-supervision must then match modalities
            by affect, not by who the person is); None draws clips at random.
        num_workers: data loader worker processes (0 loads in the training process).
        sample_unit: ``clip`` serves clips; ``frame`` serves each frame of every clip as its own sample with
            its own AU labels, as FaceFlow trains on DISFA's frames (video only; splits and labelled subsets
            stay per clip, so a clip's frames share a split and a label mask).
    """

    def __init__(
        self,
        root: str = "data/affectsynth",
        num_clips: int = 1200,
        num_identities: int = 60,
        num_frames: int = 8,
        image_size: int = 64,
        synth_seed: int = 0,
        synth_options: dict[str, Any] | None = None,
        modalities: list[str] | None = None,
        split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
        split_seed: int = 0,
        split: str = "identity",
        fold: int = 0,
        num_folds: int = 3,
        label_fraction: float = 1.0,
        label_seed: int = 0,
        unlabelled: str = "drop",
        unlabelled_ratio: int = 1,
        batch_size: int = 32,
        clips_per_identity: int | None = None,
        num_workers: int = 0,
        sample_unit: str = "clip",
    ) -> None:
        options = dict(synth_options or {})
        known = set(SynthConfig.__dataclass_fields__)
        for key in options:
            if key not in known or key in ("num_clips", "num_identities", "num_frames", "image_size", "seed"):
                raise ConfigError(
                    f"data.init_args.synth_options.{key}: not a generator knob; knobs are "
                    f"{sorted(known - {'num_clips', 'num_identities', 'num_frames', 'image_size', 'seed'})}"
                )
        try:
            self.synth_config = SynthConfig(
                num_clips=num_clips, num_identities=num_identities, num_frames=num_frames,
                image_size=image_size, seed=synth_seed, **options,
            )
        except ValueError as error:
            raise ConfigError(f"data.init_args: {error}") from None
        served = tuple(modalities) if modalities is not None else SYNTH_MODALITIES
        unknown = [m for m in served if m not in SYNTH_MODALITIES]
        if unknown or not served:
            raise ConfigError(f"data.init_args.modalities: {list(served)} must be a non-empty subset of {list(SYNTH_MODALITIES)}")
        valid_fraction = isinstance(label_fraction, (int, float)) and not isinstance(label_fraction, bool)
        if not (valid_fraction and 0.0 < label_fraction <= 1.0):
            raise ConfigError(
                f"data.init_args.label_fraction: {label_fraction!r} is not a fraction in (0, 1]; e.g. 0.1 keeps the "
                "labels of 10 % of each class of the train split, 1.0 keeps them all"
            )
        if unlabelled not in UNLABELLED_MODES:
            raise ConfigError(
                f"data.init_args.unlabelled: {unlabelled!r} is not one of {list(UNLABELLED_MODES)} (drop: leave the "
                "unlabelled train samples out; mask: serve them with target_mask False; separate: labelled and "
                "unlabelled batches side by side)"
            )
        if split not in SPLIT_KINDS:
            raise ConfigError(f"data.init_args.split: {split!r} is not one of {list(SPLIT_KINDS)}")
        if sample_unit not in SAMPLE_UNITS:
            raise ConfigError(f"data.init_args.sample_unit: {sample_unit!r} is not one of {list(SAMPLE_UNITS)}")
        if sample_unit == "frame" and served != ("video",):
            raise ConfigError("data.init_args.sample_unit: frame serves single frames, which have no audio or text; "
                              "set data.init_args.modalities: [video]")
        self.sample_unit = sample_unit
        self.split, self.fold, self.num_folds = split, fold, num_folds
        self.label_fraction = float(label_fraction)
        self.label_seed = label_seed
        self.unlabelled = unlabelled
        self.unlabelled_ratio = unlabelled_ratio
        super().__init__(batch_size, num_workers, modalities=served, tasks=SYNTH_TASKS,
                         class_names={"emotion": EMOTIONS, "au": tuple(f"AU{n}" for n in ACTION_UNITS)})
        self.sample_rate = self.synth_config.sample_rate
        digest = hashlib.sha256(json.dumps(self.synth_config.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
        self.path = Path(root) / f"affectsynth-v1-{digest}"
        self.split_fractions = tuple(split_fractions)
        self.split_seed = split_seed
        if clips_per_identity is not None and (clips_per_identity < 1 or batch_size % clips_per_identity):
            raise ConfigError(
                f"data.init_args.clips_per_identity: {clips_per_identity} must divide batch_size {batch_size}"
            )
        self.clips_per_identity = clips_per_identity
        self.arrays: AffectSynthArrays | None = None
        self.splits: dict[str, np.ndarray] = {}
        self.train_labelled: np.ndarray | None = None  # per train-split sample: keeps its labels (None: all do)

    def prepare_data(self) -> None:
        # Lightning calls this on one process per machine: the only place that may write the cache.
        self.arrays = ensure(self.path, self.synth_config)

    def setup(self, stage: str | None = None) -> None:
        if self.arrays is None:
            self.arrays = load(self.path) if (self.path / "manifest.json").is_file() else ensure(self.path, self.synth_config)
        if not self.splits:
            subjects = np.asarray(self.arrays.identity)
            if self.split == "identity":
                self.splits = identity_split(subjects, self.split_fractions, self.split_seed)
            else:
                try:
                    self.splits = cross_validation_split(
                        subjects, self.split, self.fold, self.num_folds, groups=np.asarray(self.arrays.domain),
                        val_fraction=self.split_fractions[1], seed=self.split_seed,
                    )
                except DataError as error:
                    raise ConfigError(f"data.init_args.split/fold: {error}") from None
            if self.label_fraction < 1.0:
                emotion = np.asarray(self.arrays.emotion)[self.splits["train"]]
                self.train_labelled = stratified_subset(emotion, self.label_fraction, self.label_seed)

    def dataset(self, split: str) -> AffectSynthDataset:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.setup()
        indices, labelled = self.splits[split], None
        if split == "train" and self.train_labelled is not None:
            if self.unlabelled == "drop":
                indices = indices[self.train_labelled]
            else:
                labelled = self.train_labelled
        return AffectSynthDataset(self.arrays, indices, self.modalities, labelled, self.sample_unit)

    def labelled_indices(self, split: str = "train") -> np.ndarray:
        """Clip indices of the samples of ``split`` that carry labels (all of val and test)."""
        self.setup()
        indices = self.splits[split]
        return indices[self.train_labelled] if split == "train" and self.train_labelled is not None else indices

    def class_counts(self, task: str = "emotion", split: str = "train") -> torch.Tensor:
        """Labelled samples per class of ``task`` in ``split``, for class weighting.

        Returns:
            ``emotion``: ``[7]`` counts in the order of ``class_names["emotion"]``. ``au`` (multi-label):
            ``[12, 2]``, per action unit the samples without (column 0) and with it (column 1).
        """
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        indices = self.labelled_indices(split)
        if task == "emotion":
            labels = torch.from_numpy(np.asarray(self.arrays.emotion)[indices].astype(np.int64))
            return torch.bincount(labels, minlength=len(EMOTIONS))
        if task == "au":
            intensity = np.asarray(self.arrays.au_intensity[np.sort(indices)])  # (N, T, 12)
            if self.sample_unit == "frame":
                intensity = intensity.reshape(-1, intensity.shape[-1])  # (N * T, 12): every frame is a sample
            else:
                intensity = intensity.max(axis=1)  # (N, 12): the clip's apex, as in the samples
            present = torch.from_numpy((intensity >= AU_OCCURRENCE_THRESHOLD).sum(axis=0).astype(np.int64))
            return torch.stack([len(intensity) - present, present], dim=1)
        raise ValueError(f"class_counts: {task!r} is not a classification task of AffectSynth; use 'emotion' or 'au'")

    def decode_text(self, ids: torch.Tensor) -> str:
        return decode(ids.tolist())

    def loader(self, split: str) -> DataLoader:
        if split == "train" and self.clips_per_identity:
            trainer = self.trainer
            if trainer is not None and trainer.world_size > 1:
                raise ConfigError("data.init_args.clips_per_identity: identity batches are not sharded across "
                                  "processes yet; use one process or set it to null")
            dataset = self.dataset(split)
            subjects = np.asarray(self.arrays.identity)[dataset.clip_of_item()]
            batches = IdentityBatchSampler(subjects, self.batch_size, self.clips_per_identity, seed=experiment_seed())
            return DataLoader(dataset, batch_sampler=batches, num_workers=self.num_workers,
                              persistent_workers=self.num_workers > 0, generator=loader_generator())
        return super().loader(split)

    def train_dataloader(self) -> DataLoader | Any:
        if self.unlabelled != "separate":
            return self.loader("train")
        from lightning.pytorch.utilities import CombinedLoader

        self.setup()
        train = self.splits["train"]
        keep = self.train_labelled if self.train_labelled is not None else np.ones(len(train), dtype=bool)
        if keep.all():
            raise ConfigError("data.init_args.unlabelled: separate needs unlabelled train samples; set "
                              "data.init_args.label_fraction below 1")
        loaders = {
            "labelled": self._plain_loader(
                AffectSynthDataset(self.arrays, train[keep], self.modalities, sample_unit=self.sample_unit),
                self.batch_size),
            "unlabelled": self._plain_loader(
                AffectSynthDataset(self.arrays, train[~keep], self.modalities, np.zeros((~keep).sum(), dtype=bool),
                                   self.sample_unit),
                self.batch_size * self.unlabelled_ratio),
        }
        return CombinedLoader(loaders, mode="max_size_cycle")  # an epoch is one pass over the unlabelled data

    def _plain_loader(self, dataset: AffectSynthDataset, batch_size: int) -> DataLoader:
        return split_loader(dataset, "train", batch_size, self.num_workers)
