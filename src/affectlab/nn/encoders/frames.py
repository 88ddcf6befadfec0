"""Frame encoders: an image backbone applied to every frame, then pooled over time."""

from __future__ import annotations

from typing import Any

import timm
import torch
from torch import nn

from affectlab.errors import ConfigError
from affectlab.imports import import_allowed, returns_subclass
from affectlab.nn.encoders.base import Encoder, register_encoder

BACKBONE_ALLOWS = "a timm model name, or the dotted path of an nn.Module subclass or of a factory annotated as returning one"
STEMS = ("standard", "clup")


def apply_stem(model: nn.Module, stem: str, backbone: str) -> nn.Module:
    """``model`` with its ResNet stem replaced as ``stem`` says, in place.

    ``standard`` keeps the backbone's own stem (ResNet: Conv 7x7 stride 2 padding 3, BN, ReLU, max-pool 3x3
    stride 2, so a 160-pixel face reaches layer1 at 40x40). ``clup`` is the stem of CluP's student
    (altndrr/clup: Conv 7x7, stride 1, padding 2, no max-pool): the first layer keeps the full resolution of
    small faces (FER2013's 48x48), and H x W becomes (H - 2) x (W - 2) at layer1 (a 160-pixel face: 158x158,
    16 times the standard stem's area, and as much more compute). Works on every model with a ResNet stem
    (``conv1`` a 7x7 ``Conv2d``, a ``maxpool``): timm's and torchvision's ResNets, also as timm's
    ``features_only`` extractor; a backbone without one is refused.
    """
    if stem not in STEMS:
        raise ConfigError(f"encoder stem {stem!r}: choose one of {', '.join(STEMS)}")
    if stem == "standard":
        return model
    conv1 = getattr(model, "conv1", None)
    if not (isinstance(conv1, nn.Conv2d) and conv1.kernel_size == (7, 7) and hasattr(model, "maxpool")):
        raise ConfigError(
            f"encoder stem 'clup' needs a ResNet stem (a 7x7 conv1 and a maxpool), which backbone {backbone!r} "
            "lacks; use a plain ResNet (resnet18, resnet50, torchvision.models.resnet18) or stem: standard"
        )
    model.conv1 = nn.Conv2d(conv1.in_channels, conv1.out_channels, kernel_size=7, stride=1, padding=2, bias=False)
    model.maxpool = nn.Identity()
    return model


def build_image_backbone(
    backbone: str, backbone_kwargs: dict[str, Any] | None = None, feature_stage: int | None = None,
    stem: str = "standard",
) -> nn.Module:
    """An image feature extractor from a timm name or a dotted class path.

    With ``feature_stage`` None it maps ``[N, C, H, W]`` to pooled ``[N, D]``; with a stage index (timm names
    only) to that stage's feature map ``[N, C', H', W']`` (timm's ``features_only``). Weights are never fetched
    from a hub: timm models are randomly initialised unless ``backbone_kwargs`` names a local ``checkpoint_path``.
    A dotted path is refused before any import unless its package is allowed, and after it unless it is an
    ``nn.Module`` subclass or a factory annotated as returning one (``affectlab.imports``): ``os.system`` is
    no backbone. ``stem`` as ``apply_stem``.
    """
    return apply_stem(_build_backbone(backbone, backbone_kwargs, feature_stage), stem, backbone)


def _build_backbone(backbone: str, backbone_kwargs: dict[str, Any] | None, feature_stage: int | None) -> nn.Module:
    kwargs = dict(backbone_kwargs or {})
    if "." not in backbone:
        if not timm.is_model(backbone):
            raise ValueError(
                f"backbone {backbone!r} is not a timm model name; pick one from timm.list_models() "
                "or give a dotted class path such as torchvision.models.resnet18"
            )
        if feature_stage is not None:
            return timm.create_model(backbone, pretrained=False, features_only=True, out_indices=(feature_stage,), **kwargs)
        kwargs.setdefault("num_classes", 0)  # 0 = no classifier: timm returns pooled features
        return timm.create_model(backbone, pretrained=False, **kwargs)
    # checked before anything is imported: a config string must not run code (affectlab.imports)
    factory = import_allowed(backbone, "backbone", BACKBONE_ALLOWS, lambda found: returns_subclass(found, nn.Module))
    if feature_stage is not None:
        raise ValueError(f"feature_stage needs a timm model name; {backbone!r} is a class path")
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"backbone {backbone!r} built a {type(model).__name__}, not a torch.nn.Module")
    if hasattr(model, "reset_classifier"):
        model.reset_classifier(0)
    return model


@register_encoder
class FrameEncoder(Encoder):
    """Encode ``[B, T, C, H, W]`` frames (float in [0, 1]) or ``[B, C, H, W]`` images with an image backbone.

    Args:
        backbone: timm model name (e.g. ``resnet18``) or dotted class path of an ``nn.Module`` factory.
        backbone_kwargs: keyword arguments for the backbone (``in_chans``, ``drop_rate``, ...).
        feature_stage: take this stage's feature map (timm ``features_only``) instead of the pooled output;
            an earlier stage keeps finer detail (the corner of a mouth, the height of a brow).
        spatial_grid: average a feature map into ``grid x grid`` cells and concatenate them, so the vector
            keeps where things are; 1 is global average pooling.
        pooling: over frames, ``mean`` or ``max`` (max keeps an expression's apex).
        subtract_clip_mean: feed the backbone each frame minus the clip's mean frame (TSN's RGB difference, in
            spirit): what moves over the clip (the expression) stays, what holds still (who the person is, the
            background) cancels. Needs clips of two frames or more.
        stem: ``standard`` (the backbone's own) or ``clup`` (CluP's student: a ResNet's first conv 7x7 stride 1
            padding 2, no max-pool; see ``apply_stem``).
        mean: per-channel mean used to normalise the input; travels with the backbone's weights.
        std: per-channel standard deviation, likewise.
    """

    modality = "video"

    def __init__(
        self,
        backbone: str = "test_convnext",
        backbone_kwargs: dict[str, Any] | None = None,
        feature_stage: int | None = None,
        spatial_grid: int = 1,
        pooling: str = "mean",
        subtract_clip_mean: bool = False,
        stem: str = "standard",
        mean: tuple[float, float, float] = (0.5, 0.5, 0.5),
        std: tuple[float, float, float] = (0.5, 0.5, 0.5),
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "max"):
            raise ValueError(f"pooling must be 'mean' or 'max', got {pooling!r}")
        self.backbone = build_image_backbone(backbone, backbone_kwargs, feature_stage, stem)
        self.stem = stem
        self.feature_stage = feature_stage
        self.spatial_grid = spatial_grid
        self.pooling = pooling
        self.subtract_clip_mean = subtract_clip_mean
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.num_features = self._infer_num_features()

    def _infer_num_features(self) -> int:
        if self.feature_stage is None and getattr(self.backbone, "num_features", None):
            return int(self.backbone.num_features)
        was_training = self.backbone.training
        self.backbone.eval()
        with torch.no_grad():
            out = self._embed(torch.zeros(1, self.mean.shape[1], 64, 64))
        self.backbone.train(was_training)
        return int(out.shape[-1])

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        return self._embed_normalised((images - self.mean) / self.std)

    def _embed_normalised(self, images: torch.Tensor) -> torch.Tensor:
        out = self.backbone(images)
        if isinstance(out, (list, tuple)):  # timm features_only: one map per requested stage
            out = out[-1]
        if out.ndim == 4:  # a feature map (N, C, H', W'): pool to a grid, keep the cells
            out = torch.nn.functional.adaptive_avg_pool2d(out, self.spatial_grid).flatten(1)  # (N, C * grid^2)
        return out  # (N, D)

    def forward_features(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if x.ndim == 4:  # single images: a clip of one frame
            x = x.unsqueeze(1)
        B, T = x.shape[:2]
        if not self.subtract_clip_mean:
            embedded = self._embed(x.flatten(0, 1))  # (B*T, D)
            return embedded.view(B, T, -1), mask  # (B, T, D), (B, T)
        if T < 2:
            raise ValueError("subtract_clip_mean needs clips of 2 frames or more (a single image minus itself is 0); "
                             "set the encoder's subtract_clip_mean: false for images")
        x = (x - self.mean.unsqueeze(0)) / self.std.unsqueeze(0)  # (B, T, C, H, W)
        if mask is None:
            clip_mean = x.mean(dim=1, keepdim=True)  # (B, 1, C, H, W)
        else:  # padded frames take no part in the mean
            weight = mask.to(x.dtype).view(B, T, 1, 1, 1)
            clip_mean = (x * weight).sum(dim=1, keepdim=True) / weight.sum(dim=1, keepdim=True).clamp(min=1)
        embedded = self._embed_normalised((x - clip_mean).flatten(0, 1))  # (B*T, D)
        return embedded.view(B, T, -1), mask  # (B, T, D), (B, T)


@register_encoder
class StageEncoder(Encoder):
    """The feature maps of a timm backbone's stages, from the first up to ``feature_stage`` (timm's
    ``features_only``; the stages after it are not built), for models that read a map rather than a vector.

    ``forward_stages(images [N, C, H, W])`` gives every built stage's map ``[N, C_s, H_s, W_s]`` (``stage_channels``
    lists the ``C_s``); ``forward_features`` and ``forward`` average the last map over space, per frame and then
    over frames, as every encoder does. Inputs are used as given (no normalisation), and weights are random
    unless ``backbone_kwargs`` names a local ``checkpoint_path``.

    Args:
        backbone: timm model name.
        backbone_kwargs: passed to ``timm.create_model``.
        feature_stage: the last stage built and read (-1: the backbone's last).
    """

    modality = "video"

    def __init__(self, backbone: str = "test_convnext", backbone_kwargs: dict[str, Any] | None = None,
                 feature_stage: int = -1) -> None:
        super().__init__()
        if not timm.is_model(backbone):
            raise ValueError(f"{backbone!r} is not a timm model name; pick one from timm.list_models()")
        kwargs = dict(backbone_kwargs or {})
        stages = len(timm.create_model(backbone, pretrained=False, features_only=True, **kwargs).feature_info)
        if not -stages <= feature_stage < stages:
            raise ValueError(f"feature_stage {feature_stage}: {backbone} has {stages} stages")
        last = feature_stage % stages
        extractor = timm.create_model(backbone, pretrained=False, features_only=True,
                                      out_indices=tuple(range(last + 1)), **kwargs)
        if dict(extractor.named_parameters(recurse=False)) or dict(extractor.named_buffers(recurse=False)):
            raise ValueError(f"{backbone}: its feature extractor holds weights outside its submodules")
        # The extractor's submodules become this encoder's own, so the state-dict keys are the extractor's
        # (``stem_0.weight``, ...) and checkpoints written before this encoder existed still load. The
        # extractor itself is kept out of the module tree (a list hides it) and only runs those shared modules.
        for name, module in extractor.named_children():
            self.add_module(name, module)
        self._extractor = [extractor]
        self.stage_channels: list[int] = list(extractor.feature_info.channels())
        self.num_features = self.stage_channels[-1]
        self.reduction = int(extractor.feature_info.reduction()[-1])

    def forward_stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self._extractor[0](images)  # per stage (N, C_s, H_s, W_s)

    def forward_features(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if x.ndim == 4:  # single images: a clip of one frame
            x = x.unsqueeze(1)
        B, T = x.shape[:2]
        pooled = self.forward_stages(x.flatten(0, 1))[-1].mean(dim=(2, 3))  # (B*T, C)
        return pooled.view(B, T, -1), mask  # (B, T, C), (B, T)
