"""Issue 23.2's torchvision -> timm path: `affectlab data prepare NAME --encoder resnet18 --encoder-checkpoint
FILE` with a torchvision ResNet-18 state dict (saved with torch.save, its classifier included) loads it into
timm's resnet18, and the stored per-frame features are torchvision's model's output on the same crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import affectlab_inline

from affectlab.data.store.feature_store import FeatureStore
from affectlab.data.store.video_prepare import prepare_video
from affectlab.data.synth import SynthConfig, ensure
from affectlab.data.synth.export import export_caer

CLIPS = SynthConfig(num_clips=3, num_identities=3, num_frames=4, image_size=64, styles=("shaded",))
FRAMES = ("--size", "32", "--num-frames", "2")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # torchvision's ResNet weights


@pytest.fixture(scope="module")
def caer(tmp_path_factory):
    root = tmp_path_factory.mktemp("caer_tv")
    export_caer(ensure(root / "synth", CLIPS, progress=False), root / "CAER")
    return root / "CAER"


def torchvision_features(model: torch.nn.Module, crops: np.ndarray) -> np.ndarray:
    """torchvision's ResNet-18 without its classifier on ``[N, S, S, 3]`` uint8 crops, fed as its ImageNet weights
    want: resized to 224 (bicubic, antialiased, as timm's resnet18 data config says), ImageNet-normalised."""
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return model(x).numpy()


def test_a_torchvision_checkpoint_prepares_torchvisions_features(caer, tmp_path):
    import torchvision

    torch.manual_seed(11)
    model = torchvision.models.resnet18(weights=None)  # random weights, with its 1000-class classifier
    with torch.no_grad():  # BatchNorm statistics of a trained model, not the identity of a fresh one
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    checkpoint = tmp_path / "resnet18_torchvision.pth"
    torch.save(model.state_dict(), checkpoint)
    model.fc = torch.nn.Identity()
    model.eval()

    crops_out, features_out = tmp_path / "crops", tmp_path / "features"
    prepare_video("caer", str(caer), str(crops_out), audio_seconds=0.25, num_frames=2, size=32, progress=False)
    affectlab_inline("data", "prepare", "caer", "--raw", str(caer), "--out", str(features_out), *FRAMES,
                     "--encoder", "resnet18", "--encoder-checkpoint", str(checkpoint))
    crops, features = FeatureStore(crops_out), FeatureStore(features_out)
    encoder = features.index["source"]["encoder"]
    assert encoder["name"] == "resnet18" and encoder["init"] == "checkpoint" and "warning" not in encoder
    assert features.dims["video"] == 512 and len(features) == len(crops)
    for i in range(len(crops)):
        frames = crops.features(i, "video").reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        expected = torchvision_features(model, np.rint(frames * 255).astype(np.uint8))
        stored = features.features(i, "video")
        assert stored.shape == expected.shape
        scale = float(np.abs(expected).max())
        assert np.allclose(stored, expected, atol=2e-3 * scale, rtol=1e-2), (i, float(np.abs(stored - expected).max()), scale)
    # and the same file does not fit another architecture
    other = tmp_path / "other"
    result = affectlab_inline("data", "prepare", "caer", "--raw", str(caer), "--out", str(other), *FRAMES,
                              "--encoder", "resnet34", "--encoder-checkpoint", str(checkpoint), check=False)
    assert result.returncode != 0 and "do not fit timm's resnet34" in result.stderr
