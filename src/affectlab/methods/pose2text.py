"""Implements pose-to-text sign language translation as seed 003's multimodalhugs pipeline trains it
(bricksdont/multimodalhugs-pipelines), with an encoder-decoder transformer trained from scratch.

Algorithm, per batch (``pose [B, T, K, C]``, ``pose_mask [B, T]``, ``pose_points_mask [B, T, K]``, the
target sentences ``targets["translation"]``):
1. keep at most ``max_frames`` frames (the seed's 300);
2. map each frame:                 h_t = Dropout(Linear(LayerNorm(flatten(x_t))))          (B, T, D)
   (missing points zeroed as input values; the frame mask goes to attention, ``nn/pose_mapper.py``)
3. encode:                         m = TransformerEncoder(h + positions, frame mask)        (B, T, D)
4. decode teacher-forced:          logits = TransformerDecoder([BOS] y, m)                  (B, L, V)
5. loss = label-smoothed cross-entropy against y [EOS], padding ignored.
At validation and test, the translation is beam search (``nn/beam_search.py``; ``val_num_beams`` /
``num_beams`` beams, ``length_penalty``) up to a maximum length derived from the data: the longest training
sentence in subword tokens x ``max_length_factor`` + ``max_length_margin`` (the seed's outputs were cut at a
20-token default), scored with sacrebleu's corpus BLEU and chrF (``metrics/translation.py``). The best
checkpoint and early stopping follow ``val/bleu`` (higher is better; patience ``early_stopping_patience``
validations).

The subword vocabulary (sentencepiece, ``data/tokenizer.py``) is trained on the training split's sentences
when ``fit`` sets up, and saved in every checkpoint and as the run's ``tokenizer/spm.model``: ``test`` on the
run's ``best.ckpt`` decodes with the vocabulary its weights learnt, whatever data it is given. At test the
run's artifacts get ``test_score.bleu`` and ``test_score.chrf`` (sacrebleu's line: signature = score),
``test_hypotheses.tsv`` (id, reference, hypothesis per sentence) and ``test_examples.md`` (the first few,
also printed).

``pretrained`` (optional) replaces the transformer and the vocabulary by a local Hugging Face encoder-decoder
and its tokenizer (``nn/seq2seq.py`` ``PretrainedSeq2Seq``; the mapped frames are its encoder's input
embeddings, as the seed feeds M2M-100; never downloaded); the architecture arguments and ``vocab_size`` are
then the checkpoint's. Seed 003's language prompts (``__dgs__``, ``__de__``) are not given.

The learning rate warms up linearly over ``warmup_steps`` optimiser steps, then follows ``schedule``
(``cosine`` to 0 over the trainer's remaining steps, ``inverse_sqrt``, or ``constant``); an explicit
``lr_scheduler_init`` replaces it. Gradient accumulation is the trainer's ``accumulate_grad_batches``
(steps count optimiser updates).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, EarlyStopping
from lightning.pytorch.utilities import rank_zero_info
from torch.optim.lr_scheduler import LambdaLR

from affectlab.data.tokenizer import PAD, PretrainedTokenizer, SubwordTokenizer
from affectlab.errors import ConfigError
from affectlab.methods.base import BaseMethod, OptimizerInit, SchedulerInit
from affectlab.metrics.translation import translation_scores
from affectlab.nn.beam_search import beam_search
from affectlab.nn.pose_mapper import PoseMapper
from affectlab.nn.seq2seq import PoseSeq2Seq, PretrainedSeq2Seq

TASK = "translation"
CHECKPOINT_KEY = "pose2text"
DEFAULT_OPTIMIZER: dict = {"class_path": "torch.optim.AdamW", "init_args": {"lr": 5e-4, "weight_decay": 1e-2}}


def warmup_factor(step: int, warmup_steps: int, schedule: str, total_steps: int) -> float:
    """The learning rate's multiplier at optimiser step ``step`` (from 0): linear from 1/warmup to 1 over
    ``warmup_steps``, then ``schedule``: ``constant`` 1; ``inverse_sqrt`` sqrt(warmup / step) (from the
    first step when there is no warm-up); ``cosine`` half a cosine from 1 to 0 over the steps after warm-up."""
    s = step + 1
    if warmup_steps > 0 and s <= warmup_steps:
        return s / warmup_steps
    if schedule == "inverse_sqrt":
        return math.sqrt(max(warmup_steps, 1) / s)
    if schedule == "cosine":
        span = max(total_steps - warmup_steps, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(max(s - warmup_steps, 0) / span, 1.0)))
    return 1.0


class Pose2Text(BaseMethod):
    """Pose sequences to sentences: pose mapper -> transformer encoder-decoder -> beam search.

    Args:
        num_keypoints: K of ``pose [B, T, K, C]``; None takes the data module's ``num_keypoints``.
        num_channels: C; None takes the data module's ``num_channels``.
        d_model: width of the mapper's output and both transformer stacks.
        nhead: attention heads.
        num_encoder_layers: encoder depth.
        num_decoder_layers: decoder depth.
        dim_feedforward: feed-forward width of each layer.
        dropout: inside the transformer.
        mapper_dropout: after the mapper's linear map (the seed's 0.1).
        vocab_size: the subword vocabulary's size at most (a toy corpus fills fewer).
        tokenizer_model_type: sentencepiece's ``bpe`` or ``unigram``. BPE by default: on a small corpus
            unigram's pruning stays near characters (55 pieces from AffectSynth sign's 210 training sentences
            when 200 are asked, 28 per sentence at most), while BPE's merges reach whole words (10).
        max_frames: frames read per sample at most (the seed's 300); longer sequences are cut.
        label_smoothing: of the cross-entropy.
        warmup_steps: optimiser steps of linear warm-up.
        schedule: the learning rate after warm-up: ``cosine``, ``inverse_sqrt`` or ``constant``.
        num_beams: beams at test (the seed's 5).
        val_num_beams: beams at validation (1, greedy: validation runs every epoch).
        length_penalty: the exponent of the final hypothesis's length normalisation.
        max_length: tokens generated at most; None derives it from the training sentences.
        max_length_factor: the derived maximum is the longest training sentence x this + ``max_length_margin``.
        max_length_margin: see ``max_length_factor``.
        early_stopping_patience: validations without a better ``val/bleu`` before training stops (the seed's
            10); None never stops early.
        num_examples: test translations printed and written to ``test_examples.md``.
        pretrained: a local folder holding a pretrained seq2seq model and its tokenizer (``save_pretrained``);
            None trains the transformer above from scratch.
        optimizer_init: see ``BaseMethod`` (default AdamW, lr 5e-4).
        lr_scheduler_init: see ``BaseMethod``; None uses ``warmup_steps`` and ``schedule``.
    """

    monitor = "val/bleu"
    monitor_mode = "max"

    def __init__(
        self,
        num_keypoints: int | None = None,
        num_channels: int | None = None,
        d_model: int = 256,
        nhead: int = 4,
        num_encoder_layers: int = 3,
        num_decoder_layers: int = 3,
        dim_feedforward: int = 1024,
        dropout: float = 0.1,
        mapper_dropout: float = 0.1,
        vocab_size: int = 1000,
        tokenizer_model_type: Literal["unigram", "bpe"] = "bpe",
        max_frames: int = 300,
        label_smoothing: float = 0.1,
        warmup_steps: int = 500,
        schedule: Literal["cosine", "inverse_sqrt", "constant"] = "cosine",
        num_beams: int = 5,
        val_num_beams: int = 1,
        length_penalty: float = 1.0,
        max_length: int | None = None,
        max_length_factor: float = 1.5,
        max_length_margin: int = 10,
        early_stopping_patience: int | None = 10,
        num_examples: int = 5,
        pretrained: str | None = None,
        optimizer_init: OptimizerInit | None = None,
        lr_scheduler_init: SchedulerInit | None = None,
    ) -> None:
        super().__init__(optimizer_init or DEFAULT_OPTIMIZER, lr_scheduler_init)
        if lr_scheduler_init is not None and warmup_steps:
            raise ConfigError("model.init_args.warmup_steps applies to the built-in schedule only; with an explicit "
                              "lr_scheduler_init set warmup_steps: 0 (or drop lr_scheduler_init)")
        if num_beams < 1 or val_num_beams < 1:
            raise ConfigError(f"model.init_args.num_beams and val_num_beams must be at least 1 (got {num_beams}, "
                              f"{val_num_beams})")
        self.d_model, self.mapper_dropout = d_model, mapper_dropout
        self.vocab_size, self.tokenizer_model_type = vocab_size, tokenizer_model_type
        self.max_frames, self.label_smoothing = max_frames, label_smoothing
        self.warmup_steps, self.schedule = warmup_steps, schedule
        self.num_beams, self.val_num_beams, self.length_penalty = num_beams, val_num_beams, length_penalty
        self.max_length = max_length
        self.max_length_factor, self.max_length_margin = max_length_factor, max_length_margin
        self.early_stopping_patience, self.num_examples = early_stopping_patience, num_examples
        self.pretrained = pretrained
        self.tokenizer: SubwordTokenizer | PretrainedTokenizer | None = None
        if pretrained is not None:
            if not Path(pretrained).is_dir():
                raise ConfigError(f"model.init_args.pretrained: {pretrained} is no folder; give the local folder a "
                                  "seq2seq model was saved to (save_pretrained), or null to train from scratch")
            self.seq2seq = PretrainedSeq2Seq(pretrained)
            self.tokenizer = PretrainedTokenizer(pretrained, self.seq2seq.decoder_start_id)
            self.d_model, self.vocab_size = self.seq2seq.d_model, self.seq2seq.vocab_size
        else:
            self.seq2seq = PoseSeq2Seq(vocab_size, d_model, nhead, num_encoder_layers, num_decoder_layers,
                                       dim_feedforward, dropout, pad_id=PAD)
        self.mapper: PoseMapper | None = None
        if num_keypoints is not None and num_channels is not None:
            self.mapper = PoseMapper(num_keypoints, num_channels, self.d_model, mapper_dropout)
        self._outputs: dict[str, list[tuple[int, str, str]]] = {"val": [], "test": []}

    @property
    def modalities(self) -> list[str]:
        return ["pose"]

    @property
    def tasks(self) -> list[str]:
        return [TASK]

    # -- set-up: sizes from the data, the vocabulary from its training sentences ---------------------------
    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is None:
            return
        sizes = {"num_keypoints": getattr(datamodule, "num_keypoints", None),
                 "num_channels": getattr(datamodule, "num_channels", None)}
        if self.mapper is None:
            missing = [k for k, v in sizes.items() if v is None]
            if missing:
                raise ConfigError(f"model.init_args.{missing[0]}: not given and data module {type(datamodule).__name__} "
                                  f"declares no {missing[0]}; set it in the model config")
            self.mapper = PoseMapper(sizes["num_keypoints"], sizes["num_channels"], self.d_model, self.mapper_dropout)
        for key, served in sizes.items():
            if served is not None and served != getattr(self.mapper, key):
                raise ConfigError(f"model.init_args.{key} is {getattr(self.mapper, key)} but the data serves {served}; "
                                  f"set model.init_args.{key}: {served} (or null, to take it from the data)")
        if stage == "fit" and (self.tokenizer is None or self.max_length is None):
            self._train_tokenizer(datamodule)

    def _train_tokenizer(self, datamodule: Any) -> None:
        """The vocabulary from the training sentences (a pretrained model brings its own) and the maximum
        output length from their token counts."""
        sentences = list(datamodule.sentences("train"))
        if self.tokenizer is None:
            self.tokenizer = SubwordTokenizer.train(sentences, self.vocab_size, self.tokenizer_model_type)
        if self.max_length is None:
            longest = max(len(self.tokenizer.encode(s)) for s in sentences)
            self.max_length = math.ceil(longest * self.max_length_factor) + self.max_length_margin
        rank_zero_info(f"pose2text: {self.tokenizer.vocab_size}-piece vocabulary from {len(sentences)} training "
                       f"sentences; translations up to {self.max_length} tokens")

    def _vocabulary(self) -> SubwordTokenizer | PretrainedTokenizer:
        if self.tokenizer is None or self.max_length is None:  # test without a checkpoint: the data's training sentences
            datamodule = getattr(self.trainer, "datamodule", None)
            if datamodule is None:
                raise ConfigError("Pose2Text has no vocabulary: train it (fit), or test with the run's checkpoint")
            self._train_tokenizer(datamodule)
        return self.tokenizer

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {"tokenizer": self.tokenizer.to_bytes() if self.tokenizer else None,
                                      "max_length": self.max_length}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(CHECKPOINT_KEY) or {}
        if state.get("tokenizer") is not None and self.pretrained is None:
            self.tokenizer = SubwordTokenizer.from_bytes(state["tokenizer"])
        if state.get("max_length") is not None:
            self.max_length = int(state["max_length"])

    def on_fit_start(self) -> None:
        if self.tokenizer is not None and self.tokenizer.to_bytes() is not None:
            self._log_artifact("tokenizer/spm.model", self.tokenizer.to_bytes())

    # -- the model ---------------------------------------------------------------------------------------------
    def _inputs(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 1-2: mapped frames ``(B, T, D)`` and the frame mask ``(B, T)``."""
        pose = batch["pose"][:, : self.max_frames]  # (B, T, K, C)
        frame_mask = batch.get("pose_mask")
        frame_mask = torch.ones(pose.shape[:2], dtype=torch.bool, device=pose.device) if frame_mask is None \
            else frame_mask[:, : self.max_frames].bool()
        points = batch.get("pose_points_mask")
        points = None if points is None else points[:, : self.max_frames]
        return self.mapper(pose.float(), points), frame_mask

    def _token_batch(self, sentences: list[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder inputs ``[BOS] y`` and targets ``y [EOS]``, each ``(B, L)`` padded with PAD."""
        tokenizer = self._vocabulary()
        ids = [tokenizer.encode(s) for s in sentences]
        length = max(len(i) for i in ids) + 1
        inputs = torch.full((len(ids), length), tokenizer.pad_id, dtype=torch.long)
        targets = torch.full((len(ids), length), tokenizer.pad_id, dtype=torch.long)
        for row, sequence in enumerate(ids):
            inputs[row, : len(sequence) + 1] = torch.tensor([tokenizer.bos_id, *sequence])
            targets[row, : len(sequence) + 1] = torch.tensor([*sequence, tokenizer.eos_id])
        return inputs.to(device), targets.to(device)

    def _loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frames, frame_mask = self._inputs(batch)
        inputs, targets = self._token_batch(list(batch["targets"][TASK]), frames.device)
        memory = self.seq2seq.encode(frames, frame_mask)  # 3. (B, T, D)
        logits = self.seq2seq.decode(inputs, memory, frame_mask)  # 4. (B, L, V)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=self._vocabulary().pad_id,
                               label_smoothing=self.label_smoothing)  # 5.
        return loss, memory, frame_mask

    def translate(self, memory: torch.Tensor, frame_mask: torch.Tensor, num_beams: int) -> list[str]:
        """Beam search from encoder memory ``(B, T, D)``; one sentence per sample."""
        tokenizer = self._vocabulary()
        scorer = self.seq2seq.next_log_probs(memory, frame_mask)
        # never emit padding, a second BOS, or an id the trained vocabulary does not have (the embedding is
        # sized by vocab_size, the vocabulary by the corpus, and a toy corpus fills fewer pieces)
        banned = torch.zeros(self.vocab_size, dtype=torch.bool, device=memory.device)
        banned[tokenizer.pad_id] = True
        if tokenizer.bos_id != tokenizer.eos_id:  # BART starts decoding from its end-of-sentence id
            banned[tokenizer.bos_id] = True
        banned[tokenizer.vocab_size:] = True

        def log_probs(tokens: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            return scorer(tokens, rows).masked_fill(banned, float("-inf"))

        ids = beam_search(log_probs, memory.shape[0], tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id,
                          self.max_length, num_beams=num_beams,
                          length_penalty=self.length_penalty, device=memory.device)
        return [tokenizer.decode(sequence) for sequence in ids]

    def forward(self, batch: dict[str, Any]) -> list[str]:
        """The translation of every sample of ``batch`` with the test's ``num_beams``."""
        frames, frame_mask = self._inputs(batch)
        return self.translate(self.seq2seq.encode(frames, frame_mask), frame_mask, self.num_beams)

    # -- training and evaluation ------------------------------------------------------------------------------
    def training_loss(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._loss(batch)
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=batch["pose"].shape[0])
        return loss

    def evaluation_step(self, batch: dict[str, Any], stage: str) -> None:
        loss, memory, frame_mask = self._loss(batch)
        size = batch["pose"].shape[0]
        self.log(f"{stage}/loss", loss, on_epoch=True, batch_size=size)
        hypotheses = self.translate(memory, frame_mask, self.num_beams if stage == "test" else self.val_num_beams)
        ids = batch["id"].tolist() if "id" in batch else [-1] * size
        self._outputs[stage] += list(zip(ids, batch["targets"][TASK], hypotheses))

    def evaluation_epoch_end(self, stage: str) -> None:
        outputs, self._outputs[stage] = self._outputs[stage], []
        if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            gathered: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, outputs)
            outputs = sorted((row for part in gathered for row in part), key=lambda row: row[0])
        if not outputs or self.trainer.sanity_checking:
            return
        _, references, hypotheses = zip(*outputs)
        scores = translation_scores(hypotheses, references)
        self.log_dict({f"{stage}/{name}": score.score for name, score in scores.items()}, sync_dist=False)
        if stage == "test":
            self._write_test_files(outputs, scores)

    def _write_test_files(self, outputs: list[tuple[int, str, str]], scores: dict) -> None:
        for name, score in scores.items():
            self._log_artifact(f"test_score.{name}", score.text + "\n")
        clean = [(i, r.replace("\t", " ").replace("\n", " "), h.replace("\t", " ").replace("\n", " ")) for i, r, h in outputs]
        self._log_artifact("test_hypotheses.tsv", "id\treference\thypothesis\n"
                           + "".join(f"{i}\t{r}\t{h}\n" for i, r, h in clean))
        examples = ["| id | reference | hypothesis |", "|---|---|---|"]
        examples += [f"| {i} | {r} | {h} |" for i, r, h in clean[: self.num_examples]]
        text = (f"# Test translations ({len(outputs)} sentences, {self.num_beams} beams)\n\n"
                + "\n".join(f"- {s.text}" for s in scores.values()) + "\n\n" + "\n".join(examples) + "\n")
        self._log_artifact("test_examples.md", text)
        rank_zero_info(text)

    def _log_artifact(self, name: str, content: str | bytes) -> None:
        """Write ``content`` as the run's artifact ``name`` on every logger that stores files (MLflow); global
        rank 0 only."""
        if self._trainer is None or not self.trainer.is_global_zero:
            return
        for logger in self.trainer.loggers:
            experiment, run_id = logger.experiment, getattr(logger, "run_id", None)
            if run_id is None or not hasattr(experiment, "log_artifact"):
                continue
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / Path(name).name
                path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
                parent = str(Path(name).parent)
                experiment.log_artifact(run_id, str(path), None if parent == "." else parent)

    # -- optimisation -----------------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict | list:
        optimizers, schedulers = super().configure_optimizers()
        if not schedulers:
            total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 1
            schedule = LambdaLR(optimizers[0], lambda step: warmup_factor(step, self.warmup_steps, self.schedule, total))
            schedulers = [{"scheduler": schedule, "interval": "step", "frequency": 1}]
        return optimizers, schedulers

    def configure_callbacks(self) -> list[Callback]:
        if self.early_stopping_patience is None:
            return []
        return [EarlyStopping(monitor=self.monitor, mode=self.monitor_mode, patience=self.early_stopping_patience)]
