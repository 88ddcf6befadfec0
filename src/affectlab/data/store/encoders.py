"""The frozen backbones ``affectlab data prepare`` computes pooled features with, one per modality, each from a
local checkpoint the user names (never downloaded), or randomly initialised with a warning recorded in the
store's ``source``; each records its name, its checkpoint's path and SHA-256, and its input.

- video, ``CropEncoder`` (``--encoder NAME``, ``--encoder-checkpoint PATH``): a timm image model on each face
  crop, its pooled features per frame (``[T, D]``). timm's ResNets share torchvision's state-dict keys, so a
  torchvision ResNet checkpoint loads into timm's model of the same name.
- video over time, ``Video3DEncoder`` (``--video3d-encoder NAME``, ``--video3d-encoder-checkpoint PATH``,
  ``--video3d-window W``): a torchvision video model (``r3d_18``, ``mc3_18``, ``r2plus1d_18``, ...) on windows of
  W consecutive face crops, resized to its Kinetics input (112 x 112 for the ResNet3D family) and normalised
  with the Kinetics mean and std, one pooled feature vector per window (``[ceil(T / W), D]``; the last window
  padded by repeating the clip's last frame).
- audio, ``MelEncoder`` (``--audio-encoder NAME``, ``--audio-encoder-checkpoint PATH``): a timm image model
  built for one input channel on the clip's log-mel spectrogram (``[1, 128, F]``, ``data/media/audio.py``),
  standardised per clip (zero mean, unit variance: the level of a recording says little about its speaker's
  emotion), resized to the model's input size only when the model needs a fixed one; its globally pooled
  features, one vector per clip (``[1, D]``). An image checkpoint's first convolution is summed over its
  colour channels (ImageNet weights on spectrograms, as PANNs and AST do).
- text, ``TextEncoder`` (``--text-encoder affectlab|FOLDER``, ``--text-encoder-checkpoint PATH``): the mean,
  over the utterance's real tokens, of a transformer's last hidden states (``[1, D]``). ``affectlab`` is
  AffectLab's ``TextTransformerEncoder`` (``nn/encoders/text.py``; the data layer may not import ``nn``, so
  ``TokenTransformer`` below is the same module tree, state-dict keys included, and a test holds the two
  equal) over the reader's token ids; its size is read from the checkpoint (a bare state dict, or a
  Lightning checkpoint of a whole model: the keys under the prefix that holds ``embed.weight``), and it has
  ``TEXT_HEADS`` attention heads. A checkpoint's ids must be the reader's vocabulary (one trained on the same
  data set's reader). A FOLDER is a local Hugging Face ``transformers`` model (``config.json``, weights,
  tokenizer files), read with ``local_files_only=True`` (nothing is fetched), which tokenises the utterance
  itself (special tokens included) and is averaged over its attention mask; it needs the ``transformers``
  package, imported only for a folder (it is in the ``dev`` extra, not a runtime dependency; without it a
  ConfigError says to install it). Its checksum is of the folder's files: weights, config and tokenizer.

Random initialisation is seeded (``INIT_SEED``), so a resumed preparation computes with the same weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from affectlab.errors import ConfigError, DataError
from affectlab.io import load_checkpoint

TEXT_HEADS = 4  # attention heads of the affectlab text encoder (TextTransformerEncoder's default)
MIN_MEL_FRAMES = 32  # spectrograms shorter than this are padded (a CNN's five stride-2 stages need 32)


def random_init_warning(checkpoint: Any, flag: str, modality: str) -> dict[str, str]:
    """``{"warning": ...}`` for a backbone without a checkpoint (recorded in the store), else ``{}``."""
    if checkpoint:
        return {}
    return {"warning": f"the {modality} backbone is randomly initialised (no {flag} given): its features carry "
                       "no pretrained knowledge, so results on them are not the paper's setting"}


FLOAT16_MAX = 65504.0  # the store's rows are float16
INIT_SEED = 0  # seeds a randomly initialised encoder


class CropEncoder:
    """Step 6: face crops -> the pooled feature vector of a timm model (module docstring).

    The model is built with ``timm.create_model(name, pretrained=False, num_classes=0)`` (no classifier: its
    output is the pooled feature vector), put in eval mode and run without gradients. Its input follows
    ``timm.data.resolve_data_config``: crops resized to ``input_size`` with its ``interpolation`` and normalised
    with its ``mean``/``std``. Its ``crop_pct`` centre crop is not applied: the face crop already frames the face.

    Args:
        name: a timm model name (``timm.list_models()``).
        checkpoint: a local state dict for it (``torch.save(model.state_dict(), path)``, or a checkpoint holding
            one under ``state_dict``/``model``), loaded with ``weights_only=True``; None: random initialisation,
            seeded (``INIT_SEED``) so that a resumed preparation computes with the same weights.
        batch: crops per forward pass.
        device: where the model runs.
    """

    def __init__(self, name: str, checkpoint: str | None = None, batch: int = 64, device: str = "cpu") -> None:
        import timm
        import torch

        if batch < 1:
            raise ConfigError(f"--encoder-batch must be at least 1, got {batch}")
        if not timm.is_model(name):
            raise ConfigError(f"--encoder: {name!r} is not a timm model name; list them with "
                              "python -c \"import timm; print(timm.list_models('resnet*'))\"")
        self.name, self.batch, self.device = name, batch, torch.device(device)
        with torch.random.fork_rng(devices=[]):  # a fixed random init: a resumed preparation builds the same model
            torch.manual_seed(INIT_SEED)
            self.model = timm.create_model(name, pretrained=False, num_classes=0)
        self.checkpoint = checkpoint_identity(checkpoint) if checkpoint else None
        self.checkpoint_path = checkpoint
        if checkpoint:
            load_encoder_weights(self.model, checkpoint)
        self.model.eval().to(self.device)
        config = timm.data.resolve_data_config({}, model=self.model)
        self.input_size = tuple(int(v) for v in config["input_size"][1:])  # (H, W)
        self.interpolation = config["interpolation"] if config["interpolation"] in ("bilinear", "bicubic") else "bilinear"
        self.mean = torch.tensor(config["mean"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(config["std"], dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.dim = int(self(np.zeros((1, 8, 8, 3), np.uint8)).shape[1])  # what the model pools to, whatever its head

    def describe(self) -> dict[str, Any]:
        """What the store's ``source`` records about the encoder."""
        return {"name": self.name, "checkpoint": self.checkpoint,
                "init": "checkpoint" if self.checkpoint else f"random (torch seed {INIT_SEED})",
                **random_init_warning(self.checkpoint, "--encoder-checkpoint", "video"),
                "dim": self.dim, "input_size": list(self.input_size),
                "interpolation": self.interpolation, "mean": self.mean.flatten().tolist(),
                "std": self.std.flatten().tolist()}

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """``[N, S, S, 3]`` uint8 crops -> ``[N, D]`` float32 features."""
        import torch
        import torch.nn.functional as F

        features = []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch):
                x = torch.from_numpy(np.ascontiguousarray(crops[start:start + self.batch])).to(self.device)
                x = x.permute(0, 3, 1, 2).float().div(255.0)  # [n, 3, S, S] in [0, 1]
                if tuple(x.shape[-2:]) != self.input_size:
                    x = F.interpolate(x, size=self.input_size, mode=self.interpolation, align_corners=False,
                                      antialias=True).clamp(0.0, 1.0)  # bicubic overshoots
                features.append(self.model((x - self.mean) / self.std).float().cpu().numpy())  # [n, D]
        return np.concatenate(features) if features else np.zeros((0, 0), np.float32)


VIDEO3D_HEADS = ("fc", "head", "classifier")  # the classifier attribute of torchvision's video models


class Video3DEncoder:
    """Video, over time: windows of W consecutive face crops -> one pooled feature vector each, from a torchvision
    video model (``torchvision.models.video``: ``r3d_18``, ``mc3_18``, ``r2plus1d_18``, ``s3d``, ...).

    The model is built with ``torchvision.models.get_model(name, weights=None)`` (never downloaded), its
    classifier (``fc``, ``head`` or ``classifier``) replaced by the identity so that it returns its pooled
    features, put in eval mode and run without gradients. Its input is what torchvision's Kinetics weights of
    the model expect, read from their transforms (nothing is fetched for that): frames resized to the crop size
    (112 x 112 for the ResNet3D family, 224 for S3D; face crops of ``--size`` 64 are upsampled) and normalised
    with the Kinetics mean and std, as ``[N, 3, W, H, W]``.

    Args:
        name: a torchvision video model name (``torchvision.models.list_models(module=torchvision.models.video)``).
        checkpoint: a local state dict of that model (its classifier's keys are left out); None: seeded random
            initialisation (``INIT_SEED``).
        window: W, sampled frames per window (the original's 16).
        batch: windows per forward pass.
        device: where the model runs.
    """

    def __init__(self, name: str, checkpoint: str | None = None, window: int = 16, batch: int = 8,
                 device: str = "cpu") -> None:
        import torch
        import torchvision

        names = torchvision.models.list_models(module=torchvision.models.video)
        if name not in names:
            raise ConfigError(f"--video3d-encoder: {name!r} is not a torchvision video model; choose one of "
                              f"{', '.join(names)}")
        if window < 1 or batch < 1:
            raise ConfigError(f"--video3d-window ({window}) and the window batch ({batch}) must be at least 1")
        self.name, self.window, self.batch, self.device = name, window, batch, torch.device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            self.model = torchvision.models.get_model(name, weights=None)
        head = next(h for h in VIDEO3D_HEADS if hasattr(self.model, h))
        setattr(self.model, head, torch.nn.Identity())
        self.checkpoint = checkpoint_identity(checkpoint, "--video3d-encoder-checkpoint") if checkpoint else None
        if checkpoint:
            key = "--video3d-encoder-checkpoint"
            state = {k: v for k, v in read_state_dict(checkpoint, key).items() if not k.startswith(head + ".")}
            expected = set(self.model.state_dict())
            missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
            if missing or unexpected:
                raise ConfigError(f"{key}: the weights in {checkpoint} do not fit torchvision's {name}: "
                                  f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys "
                                  f"{unexpected[:5]}; is --video3d-encoder the architecture they were saved from?")
            try:
                self.model.load_state_dict(state, strict=True)
            except RuntimeError as error:
                raise ConfigError(f"{key}: the weights in {checkpoint} do not fit {name}: {error}") from None
        self.model.eval().to(self.device)
        transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms()  # a recipe, no download
        self.input_size = tuple(int(v) for v in transforms.crop_size)
        self.mean = torch.tensor(transforms.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1, 1)
        self.std = torch.tensor(transforms.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1, 1)
        self.dim = int(self(np.zeros((1, 8, 8, 3), np.uint8)).shape[1])

    def describe(self) -> dict[str, Any]:
        """What the store's ``source`` records about the encoder."""
        return {"name": self.name, "checkpoint": self.checkpoint,
                "init": "checkpoint" if self.checkpoint else f"random (torch seed {INIT_SEED})",
                **random_init_warning(self.checkpoint, "--video3d-encoder-checkpoint", "3D video"),
                "dim": self.dim, "window": self.window, "input_size": list(self.input_size),
                "interpolation": "bilinear", "mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist(),
                "pooled": f"per window of {self.window} consecutive sampled frames, the last window padded by "
                          "repeating its last frame"}

    def windows(self, crops: np.ndarray) -> list[np.ndarray]:
        """``[T, S, S, 3]`` crops -> ``ceil(T / W)`` windows ``[W, S, S, 3]`` of consecutive frames, without
        overlap; the last one padded by repeating the clip's last frame (one padded window when ``T < W``)."""
        windows = [crops[start:start + self.window] for start in range(0, len(crops), self.window)]
        if windows and len(windows[-1]) < self.window:
            last = windows[-1]
            windows[-1] = np.concatenate([last, np.repeat(last[-1:], self.window - len(last), axis=0)])
        return windows

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """``[T, S, S, 3]`` uint8 crops of one clip -> ``[ceil(T / W), D]`` float32, one row per window."""
        import torch
        import torch.nn.functional as F

        features = []
        windows = self.windows(crops)
        with torch.inference_mode():
            for start in range(0, len(windows), self.batch):
                x = torch.from_numpy(np.stack(windows[start:start + self.batch])).to(self.device)  # [n, W, S, S, 3]
                n, w = x.shape[:2]
                x = x.reshape(n * w, *x.shape[2:]).permute(0, 3, 1, 2).float().div(255.0)  # [n W, 3, S, S]
                if tuple(x.shape[-2:]) != self.input_size:
                    x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False, antialias=True)
                x = x.reshape(n, w, 3, *self.input_size).transpose(1, 2)  # [n, 3, W, H, W]
                features.append(self.model((x - self.mean) / self.std).float().cpu().numpy())
        return np.concatenate(features) if features else np.zeros((0, 0), np.float32)


def checkpoint_identity(path: str, flag: str = "--encoder-checkpoint") -> dict[str, str]:
    """A checkpoint's absolute path and SHA-256 (a folder's: of its files' names and contents, in name order):
    what the store records, and what a resumed preparation must find again (the same path holding other
    weights is another encoder)."""
    if Path(path).is_dir():
        digest = hashlib.sha256()
        for file in sorted(p for p in Path(path).rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(path)).encode() + b"\0")
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return {"path": str(Path(path).resolve()), "sha256": digest.hexdigest()}
    if not Path(path).is_file():
        raise ConfigError(f"{flag}: {path} does not exist")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(Path(path).resolve()), "sha256": digest.hexdigest()}


def read_state_dict(path: str, key: str) -> dict[str, Any]:
    """The state dict in checkpoint ``path`` (alone, or under ``state_dict``/``model``), DataParallel's
    ``module.`` prefix removed; anything else is a ConfigError naming ``key`` and how to save one."""
    import torch

    try:
        state = load_checkpoint(path, key=key)
    except ConfigError as error:
        if not Path(path).is_file():
            raise
        raise ConfigError(f"{error}; save the state dict alone: torch.save(model.state_dict(), path)") from None
    for wrapper in ("state_dict", "model"):  # common checkpoint layouts around the state dict
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{key}: {path} holds no state dict (a dict of tensors); save one with "
                          "torch.save(model.state_dict(), path)")
    return {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel / DDP


def load_encoder_weights(model: Any, path: str, key: str = "--encoder-checkpoint", in_chans: int = 3) -> None:
    """Load checkpoint ``path`` into the timm ``model`` strictly (its classifier's weights, which
    ``num_classes=0`` removed, are left out). A model built for ``in_chans`` 1 (the audio encoder on a
    spectrogram) takes an image checkpoint's first convolution summed over its three colour channels, as timm
    adapts pretrained weights to grey input (``timm.models.adapt_input_conv``)."""
    state = read_state_dict(path, key)
    expected_shapes = {k: v.shape for k, v in model.state_dict().items()}
    if in_chans == 1:
        state = {k: (v.sum(dim=1, keepdim=True) if k in expected_shapes and v.ndim == 4 and v.shape[1] == 3
                     and expected_shapes[k][1] == 1 else v) for k, v in state.items()}
    heads = model.pretrained_cfg.get("classifier") or ()
    heads = (heads,) if isinstance(heads, str) else tuple(heads)
    state = {k: v for k, v in state.items() if not any(k.startswith(head + ".") for head in heads)}
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ConfigError(f"{key}: the weights in {path} do not fit timm's {model.default_cfg.get('architecture')}: "
                          f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys "
                          f"{unexpected[:5]}; is --encoder the architecture they were saved from?")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:  # same keys, other shapes
        raise ConfigError(f"{key}: the weights in {path} do not fit --encoder: {error}") from None


def feature_rows(features: np.ndarray) -> np.ndarray:
    """``[T, D]`` float32 encoder features -> the store's float16 rows; values float16 cannot hold are an error."""
    largest = float(np.abs(features).max()) if features.size else 0.0
    if not np.isfinite(largest) or largest > FLOAT16_MAX:
        raise DataError(f"--encoder: the features reach {largest:g}, beyond float16 (the store's format, at most "
                        f"{FLOAT16_MAX:g}); choose a model whose pooled output is normalised, or other weights")
    return features.astype(np.float16)


class MelEncoder:
    """Audio: a clip's log-mel spectrogram -> one pooled feature vector of a timm model (module docstring).

    Args:
        name: a timm model name, built with ``in_chans=1, num_classes=0``.
        checkpoint: a local state dict for it (an image model's included); None: seeded random initialisation.
        device: where the model runs.
    """

    def __init__(self, name: str, checkpoint: str | None = None, device: str = "cpu") -> None:
        import timm
        import torch

        if not timm.is_model(name):
            raise ConfigError(f"--audio-encoder: {name!r} is not a timm model name; list them with "
                              "python -c \"import timm; print(timm.list_models('resnet*'))\"")
        self.name, self.device = name, torch.device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            self.model = timm.create_model(name, pretrained=False, num_classes=0, in_chans=1)
        self.checkpoint = checkpoint_identity(checkpoint, "--audio-encoder-checkpoint") if checkpoint else None
        if checkpoint:
            load_encoder_weights(self.model, checkpoint, "--audio-encoder-checkpoint", in_chans=1)
        self.model.eval().to(self.device)
        cfg = self.model.pretrained_cfg
        self.fixed_size = tuple(int(v) for v in cfg["input_size"][1:]) if cfg.get("fixed_input_size") else None
        self.dim = int(self(np.zeros((MIN_MEL_FRAMES, 128), np.float32)).shape[1])

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "checkpoint": self.checkpoint,
                "init": "checkpoint" if self.checkpoint else f"random (torch seed {INIT_SEED})",
                **random_init_warning(self.checkpoint, "--audio-encoder-checkpoint", "audio"),
                "dim": self.dim, "input": "log-mel [1, 128, F] standardised per clip"
                + (f", resized to {list(self.fixed_size)}" if self.fixed_size else ""), "pooled": "per clip"}

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        """``[F, 128]`` log-mel -> ``[1, D]`` float32."""
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32)).T[None, None]  # (1, 1, 128, F)
        x = (x - x.mean()) / (x.std() + 1e-5) if x.numel() > 1 else x
        if x.shape[-1] < MIN_MEL_FRAMES:
            x = F.pad(x, (0, MIN_MEL_FRAMES - x.shape[-1]), value=float(x.min()))
        if self.fixed_size is not None:
            x = F.interpolate(x, size=self.fixed_size, mode="bilinear", align_corners=False)
        with torch.inference_mode():
            return self.model(x.to(self.device)).float().cpu().numpy()  # (1, D)


def _token_transformer():
    """``TokenTransformer``: ``nn/encoders/text.py``'s ``TextTransformerEncoder`` as a plain module (same
    submodules, same state-dict keys, same forward), built here because the data layer cannot import ``nn``."""
    import torch
    from torch import nn

    class TokenTransformer(nn.Module):
        def __init__(self, vocab_size: int, dim: int, num_layers: int, num_heads: int, max_len: int) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
            self.position = nn.Parameter(torch.zeros(1, max_len, dim))
            nn.init.normal_(self.position, std=0.02)
            layer = nn.TransformerEncoderLayer(dim, num_heads, 2 * dim, 0.0, batch_first=True, norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            """``[B, L]`` ids -> ``[B, D]``: the last hidden states averaged over the real (non-zero) tokens."""
            mask = ids != 0
            attend = mask.clone()
            attend[:, 0] = True
            hidden = self.transformer(self.embed(ids) + self.position[:, : ids.shape[1]], src_key_padding_mask=~attend)
            weights = mask.unsqueeze(-1).float()
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    return TokenTransformer


def _affectlab_text_state(path: str) -> dict[str, Any]:
    """The ``TextTransformerEncoder`` state dict in checkpoint ``path``: under the one prefix that holds both
    ``embed.weight`` and ``position`` (a bare encoder's is empty; a Lightning checkpoint's is e.g.
    ``encoders.text.``)."""
    key = "--text-encoder-checkpoint"
    state = read_state_dict(path, key)
    prefixes = [k[: -len("embed.weight")] for k in state if k.endswith("embed.weight")]
    prefixes = [p for p in prefixes if f"{p}position" in state]
    if len(prefixes) != 1:
        raise ConfigError(f"{key}: {path} holds {len(prefixes)} TextTransformerEncoder weight sets (keys ending in "
                          f"embed.weight with a position beside them: {prefixes[:3]}); save the text encoder's own "
                          "state dict: torch.save(encoder.state_dict(), PATH)")
    return {k[len(prefixes[0]):]: v for k, v in state.items() if k.startswith(prefixes[0])}


class TextEncoder:
    """Text: an utterance -> the mean of a transformer's last hidden states over its tokens (module docstring).

    Args:
        name: ``affectlab``, or a local ``transformers`` model folder.
        checkpoint: ``affectlab``: a local state dict of a ``TextTransformerEncoder``; None: seeded random
            initialisation of one with ``vocab_size`` ids, 64 features, 1 layer, ``max_len`` positions.
        vocab_size: the reader's vocabulary size (ids the encoder must accept).
        max_len: the reader's longest utterance, in tokens.
        device: where the model runs.
    """

    def __init__(self, name: str, checkpoint: str | None = None, vocab_size: int = 512, max_len: int = 64,
                 device: str = "cpu") -> None:
        import torch

        self.name, self.device, self.tokenizer = name, torch.device(device), None
        if name != "affectlab":
            self._init_transformers(name, checkpoint)
            return
        self.checkpoint = checkpoint_identity(checkpoint, "--text-encoder-checkpoint") if checkpoint else None
        state = _affectlab_text_state(checkpoint) if checkpoint else None
        if state is not None:
            vocab, dim = (int(v) for v in state["embed.weight"].shape)
            length = int(state["position"].shape[1])
            layers = len({k.split(".")[2] for k in state if k.startswith("transformer.layers.")})
        else:
            vocab, dim, length, layers = vocab_size, 64, max(64, max_len), 1
        if vocab < vocab_size or length < max_len:
            raise ConfigError(f"--text-encoder-checkpoint: the encoder in {checkpoint} takes {vocab} token ids and "
                              f"{length} positions; the reader's text has {vocab_size} ids and up to {max_len} "
                              "tokens (lower the reader's vocab_size / text_length, or use an encoder trained on it)")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(INIT_SEED)
            self.model = _token_transformer()(vocab, dim, layers, TEXT_HEADS, length)
        if state is not None:
            try:
                self.model.load_state_dict(state, strict=True)
            except RuntimeError as error:
                raise ConfigError(f"--text-encoder-checkpoint: the weights in {checkpoint} do not fit "
                                  f"TextTransformerEncoder(vocab_size={vocab}, dim={dim}, num_layers={layers}, "
                                  f"num_heads={TEXT_HEADS}, max_len={length}): {error}") from None
        self.model.eval().to(self.device)
        self.dim, self.config = dim, {"vocab_size": vocab, "dim": dim, "num_layers": layers, "num_heads": TEXT_HEADS,
                                      "max_len": length}

    def _init_transformers(self, folder: str, checkpoint: str | None) -> None:
        if checkpoint is not None:
            raise ConfigError("--text-encoder-checkpoint is for --text-encoder affectlab; a transformers model's "
                              "weights are in its folder (--text-encoder FOLDER)")
        if not Path(folder).is_dir():
            raise ConfigError(f"--text-encoder: {folder!r} is neither 'affectlab' nor a local transformers model "
                              "folder (config.json, weights, tokenizer files)")
        try:
            import transformers
        except ImportError:
            raise ConfigError(f"--text-encoder {folder}: reading a transformers model needs the 'transformers' "
                              "package, which is not installed here; install it, or use --text-encoder affectlab "
                              "(with --text-encoder-checkpoint PATH)") from None
        self.checkpoint = checkpoint_identity(folder, "--text-encoder")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = transformers.AutoModel.from_pretrained(folder, local_files_only=True).eval().to(self.device)
        self.dim = int(self.model.config.hidden_size)
        self.config = {"transformers": type(self.model).__name__}

    @property
    def unknown_token(self) -> str | None:
        """What an augmented view puts in place of a word a transformers model should not see: its tokenizer's
        unknown token, else its mask token; None for the affectlab encoder (it reads ids)."""
        if self.tokenizer is None:
            return None
        return self.tokenizer.unk_token or self.tokenizer.mask_token

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "checkpoint": self.checkpoint,
                "init": "checkpoint" if self.checkpoint else f"random (torch seed {INIT_SEED})",
                **random_init_warning(self.checkpoint, "--text-encoder-checkpoint", "text"),
                "dim": self.dim, "config": self.config,
                "input": "the utterance, tokenised by the model's own tokenizer" if self.tokenizer is not None
                else "the reader's token ids", "pooled": "mean over the utterance's tokens"}

    def __call__(self, ids: np.ndarray, text: str = "") -> np.ndarray:
        """An utterance (``ids`` ``[L]`` of the reader's vocabulary; ``text`` for a transformers model) ->
        ``[1, D]`` float32; ``[0, D]`` for an utterance without a token."""
        import torch

        with torch.inference_mode():
            if self.tokenizer is not None:
                if not text.strip():
                    return np.zeros((0, self.dim), np.float32)
                inputs = self.tokenizer(text, return_tensors="pt", truncation=True).to(self.device)
                hidden = self.model(**inputs).last_hidden_state  # (1, L, D)
                weights = inputs["attention_mask"].unsqueeze(-1).float()
                return ((hidden * weights).sum(1) / weights.sum(1)).float().cpu().numpy()
            if len(ids) == 0:
                return np.zeros((0, self.dim), np.float32)
            x = torch.from_numpy(np.asarray(ids, dtype=np.int64))[None].to(self.device)
            return self.model(x).float().cpu().numpy()  # (1, D)
