"""The two backbones of issue 23's preparation beyond the per-frame timm model: a torchvision 3D video model over
windows of frames (``--video3d-encoder``, ``encoders.Video3DEncoder``), alone or beside the window's mean
``--encoder`` features, and a local Hugging Face ``transformers`` folder as the text encoder
(``--text-encoder FOLDER``), built in the test and read offline."""

from __future__ import annotations

import itertools
import json
import socket

import numpy as np
import pytest
import torch

from conftest import affectlab_inline

from affectlab.data.store import video_prepare
from affectlab.data.store.encoders import CropEncoder, TextEncoder, Video3DEncoder
from affectlab.data.store.feature_store import FeatureStore, FeatureStoreDataModule, FeatureStoreWriter
from affectlab.data.store.video_prepare import prepare_video
from affectlab.data.synth import SynthConfig, ensure
from affectlab.data.synth.export import export_caer, export_meld
from affectlab.errors import ConfigError

CLIPS = SynthConfig(num_clips=6, num_identities=6, num_frames=8, image_size=64, styles=("shaded",))
# 6 sampled frames in windows of 4: a whole window, then one of 2 frames padded with the 6th twice.
FRAMES = {"num_frames": 6, "size": 32, "progress": False}


@pytest.fixture(scope="module")
def caer(tmp_path_factory):
    root = tmp_path_factory.mktemp("caer3d")
    export_caer(ensure(root / "synth", CLIPS, progress=False), root / "CAER")
    return root / "CAER"


@pytest.fixture(scope="module")
def crops_store(caer, tmp_path_factory):
    """The same clips stored as crops: what the encoders saw."""
    out = tmp_path_factory.mktemp("caer_crops") / "store"
    prepare_video("caer", str(caer), str(out), audio_seconds=0.25, **FRAMES)
    return FeatureStore(out)


def _crops(store: FeatureStore, i: int, size: int = 32) -> np.ndarray:
    rows = store.features(i, "video").reshape(-1, 3, size, size).transpose(0, 2, 3, 1)
    return np.rint(rows * 255).astype(np.uint8)


def test_windows_are_consecutive_frames_and_a_short_clip_is_one_padded_window():
    encoder = Video3DEncoder("r3d_18", window=4)
    crops = np.arange(6, dtype=np.uint8)[:, None, None, None] * np.ones((6, 8, 8, 3), np.uint8)
    windows = encoder.windows(crops)
    assert [w[:, 0, 0, 0].tolist() for w in windows] == [[0, 1, 2, 3], [4, 5, 5, 5]]
    assert [w[:, 0, 0, 0].tolist() for w in encoder.windows(crops[:3])] == [[0, 1, 2, 2]]
    assert encoder.dim == 512 and encoder(crops).shape == (2, 512)
    described = encoder.describe()
    assert described["input_size"] == [112, 112] and described["window"] == 4
    assert np.allclose(described["mean"], [0.43216, 0.394666, 0.37645]) and "randomly initialised" in described["warning"]
    # The model's input: crops resized to 112, Kinetics-normalised, [N, 3, W, H, W]
    x = torch.nn.functional.interpolate(torch.from_numpy(windows[1]).permute(0, 3, 1, 2).float() / 255, size=(112, 112),
                                        mode="bilinear", align_corners=False, antialias=True)
    mean, std = torch.tensor(described["mean"]).view(3, 1, 1, 1), torch.tensor(described["std"]).view(3, 1, 1, 1)
    with torch.no_grad():
        expected = encoder.model(((x.transpose(0, 1) - mean) / std)[None]).numpy()
    assert np.allclose(encoder(crops)[1:], expected, atol=1e-4)
    with pytest.raises(ConfigError, match=r"--video3d-encoder: 'resnet50' is not a torchvision video model; "
                                          r"choose one of .*r3d_18"):
        Video3DEncoder("resnet50")


def test_video3d_checkpoint_loads_local_weights_and_names_what_does_not_fit(tmp_path):
    import torchvision

    torch.manual_seed(3)
    trained = torchvision.models.get_model("mc3_18", weights=None)  # with its Kinetics classifier, left out on load
    path = tmp_path / "mc3.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}}, path)
    encoder = Video3DEncoder("mc3_18", checkpoint=str(path), window=2)
    assert torch.equal(encoder.model.stem[0].weight, trained.stem[0].weight)
    assert "warning" not in encoder.describe() and len(encoder.describe()["checkpoint"]["sha256"]) == 64
    with pytest.raises(ConfigError, match=r"--video3d-encoder-checkpoint: the weights in .*mc3.pt do not fit r3d_18"):
        Video3DEncoder("r3d_18", checkpoint=str(path))  # same keys, other kernel shapes
    with pytest.raises(ConfigError, match=r"--video3d-window needs --video3d-encoder NAME"):
        prepare_video("caer", str(tmp_path), str(tmp_path / "s"), video3d_window=4)
    with pytest.raises(ConfigError, match=r"--video3d-encoder-checkpoint needs --video3d-encoder NAME"):
        prepare_video("caer", str(tmp_path), str(tmp_path / "s"), video3d_encoder_checkpoint=str(path))


def test_3d_windows_beside_the_window_mean_of_the_frame_encoder_are_the_video_rows(caer, crops_store, tmp_path):
    out = tmp_path / "both"
    prepare_video("caer", str(caer), str(out), encoder="test_vit", video3d_encoder="r3d_18", video3d_window=4,
                  audio_seconds=0.25, **FRAMES)
    store = FeatureStore(out)
    assert store.dims == {"video": 512 + 64, "audio": 128} and store.shapes == {}
    source = store.index["source"]
    assert source["video3d_encoder"]["name"] == "r3d_18" and source["video3d_encoder"]["window"] == 4
    assert source["options"]["video3d_encoder"] == {"name": "r3d_18", "window": 4, "checkpoint": None}
    assert len(source["warnings"]) == 2 and "3D video backbone is randomly initialised" in source["warnings"][1]
    frames, windows = CropEncoder("test_vit"), Video3DEncoder("r3d_18", window=4)  # seeded: the preparation's weights
    for i in range(2):
        crops = _crops(crops_store, i)
        assert len(crops) == 6
        per_frame = frames(crops)
        expected = np.concatenate([windows(crops), np.stack([per_frame[:4].mean(0), per_frame[4:].mean(0)])], 1)
        assert np.allclose(store.features(i, "video"), expected, atol=2e-2, rtol=1e-2), i
    data = FeatureStoreDataModule(str(out), batch_size=4)
    batch = next(iter(data.val_dataloader()))
    assert batch["video"].shape[1:] == (2, 576) and batch["video"].dtype == torch.float32


def test_3d_only_through_the_cli_and_another_3d_encoder_is_refused(caer, crops_store, tmp_path, monkeypatch):
    out = tmp_path / "store"
    args = ("data", "prepare", "caer", "--raw", str(caer), "--out", str(out), "--size", "32", "--num-frames", "6",
            "--audio-seconds", "0.25", "--video3d-encoder", "r3d_18", "--video3d-window", "4")
    printed = affectlab_inline(*args).stdout
    assert "each window of 4 sampled frames stored as r3d_18's 512 pooled features (random init)" in printed
    assert "warning: the 3D video backbone is randomly initialised (no --video3d-encoder-checkpoint given)" in printed
    store = FeatureStore(out)  # its values: test_3d_windows_beside_the_window_mean_...
    assert store.dims["video"] == 512 and len(store) == len(crops_store) and store.shapes == {}
    batch = next(iter(FeatureStoreDataModule(str(out), batch_size=4).train_dataloader()))
    assert batch["video"].shape[1:] == (2, 512)
    other = {"audio_seconds": 0.25, "video3d_encoder": "mc3_18", "video3d_window": 4, **FRAMES}
    with pytest.raises(ConfigError, match=r"already holds a complete store of caer made with video3d_encoder "
                                          r"\{'name': 'r3d_18'.*\(not video3d_encoder \{'name': 'mc3_18'"):
        prepare_video("caer", str(caer), str(out), **other)
    # killed after the first shard (of one clip), then resumed with another 3D model: refused as with --encoder
    real, calls = video_prepare.prepare_clip, []

    def killed(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(video_prepare, "prepare_clip", killed)
    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        prepare_video("caer", str(caer), str(resumed), shard_samples=1, **{**other, "video3d_encoder": "r3d_18"})
    monkeypatch.undo()
    assert FeatureStoreWriter(resumed, {}, {}).written_ids() == [0]
    with pytest.raises(ConfigError, match=r"unfinished preparation made with video3d_encoder \{'name': 'r3d_18'"):
        prepare_video("caer", str(caer), str(resumed), shard_samples=1, **other)
    with pytest.raises(ConfigError, match=r"unfinished preparation made with video3d_encoder.*\(not video3d_encoder None"):
        prepare_video("caer", str(caer), str(resumed), shard_samples=1, audio_seconds=0.25, **FRAMES)


# -- a local transformers folder as the text encoder ------------------------------------------------------------------


def _transformers_folder(folder, texts: list[str]):
    """A 2-layer RoBERTa of hidden size 32 and a word-level tokenizer over the words of ``texts`` (split at spaces
    and punctuation), saved as a model folder."""
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    split = pre_tokenizers.Whitespace()
    words = {word for text in texts for word, _ in split.pre_tokenize_str(text)}
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *sorted(words)])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = split
    tokenizer.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                             special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                                cls_token="[CLS]", sep_token="[SEP]", model_max_length=64)
    fast.save_pretrained(folder)
    config = transformers.RobertaConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=80,
                                        pad_token_id=0, bos_token_id=2, eos_token_id=3)
    torch.manual_seed(7)
    model = transformers.AutoModel.from_config(config).eval()
    model.save_pretrained(folder)
    return fast, model


def test_text_rows_are_a_local_transformers_models_mean_token_embedding_and_nothing_is_fetched(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    from affectlab.data.readers.meld import MeldDataModule

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    raw = tmp_path / "MELD.Raw"
    export_meld(ensure(tmp_path / "synth", SynthConfig(num_clips=6, num_identities=6, num_frames=4, image_size=64,
                                                       styles=("shaded",)), progress=False), raw)
    reader = MeldDataModule(str(raw))
    reader.setup()
    utterances = [clip.text for clip in reader.clips]
    folder = tmp_path / "tiny-roberta"
    tokenizer, model = _transformers_folder(folder, utterances)

    def no_network(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    out = tmp_path / "store"
    prepare_video("meld", str(raw), str(out), num_frames=2, size=16, audio_seconds=0.25, text_encoder=str(folder),
                  views=2, progress=False)
    monkeypatch.undo()
    store = FeatureStore(out)
    source = store.index["source"]
    assert store.dims["text"] == 32 and store.token_ids == ()
    assert source["text_encoder"]["checkpoint"]["path"] == str(folder.resolve()) and "warning" not in source["text_encoder"]
    assert source["options"]["text_encoder"]["checkpoint"] == source["text_encoder"]["checkpoint"]
    assert source["text_encoder"]["config"] == {"transformers": "RobertaModel"}

    def embedding(text: str) -> np.ndarray:
        inputs = tokenizer(text, return_tensors="pt")
        with torch.no_grad():  # [1, L, 32]: every token is real (one utterance, no padding), special ones included
            return model(**inputs).last_hidden_state.mean(1).numpy()

    augmented = 0
    for i, text in enumerate(utterances):
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == 2 and ids[-1] == 3 and 1 not in ids and len(ids) > 3  # [CLS] words [SEP], all known
        assert np.allclose(store.features(i, "text", view=0), embedding(text), atol=1e-2), i
        # view 1: the utterance with some of its words (at spaces) replaced by [UNK], none left out
        spoken, view1 = text.split(), store.features(i, "text", view=1)
        unknown = [drops for drops in itertools.product((False, True), repeat=len(spoken))
                   if np.allclose(view1, embedding(" ".join("[UNK]" if d else w for w, d in zip(spoken, drops))),
                                  atol=1e-2)]
        assert unknown, i
        augmented += any(unknown[0])
    assert augmented >= 1  # the seeded draws replace words in some utterances
    # The checksum is of the folder's files: other weights in the same folder are another encoder.
    before = TextEncoder(str(folder)).describe()["checkpoint"]["sha256"]
    torch.manual_seed(8)
    type(model)(model.config).save_pretrained(folder)
    assert TextEncoder(str(folder)).describe()["checkpoint"]["sha256"] != before
    with pytest.raises(ConfigError, match=r"already holds a complete store of meld made with text_encoder"):
        prepare_video("meld", str(raw), str(out), num_frames=2, size=16, audio_seconds=0.25, text_encoder=str(folder),
                      progress=False)
    with pytest.raises(ConfigError, match=r"--text-encoder-checkpoint is for --text-encoder affectlab"):
        TextEncoder(str(folder), checkpoint=str(folder / "config.json"))
    assert json.loads((folder / "config.json").read_text())["num_hidden_layers"] == 2
