"""Pose2Text (methods/pose2text.py) on a memorisable toy set built here, and its subword tokenizer.

The data module is a stand-in with the pose batch contract (``pose [B, T, K, C]``, ``pose_mask``,
``pose_points_mask``, ``targets["translation"]`` as strings); the CLI test (tests/cli/test_translation_cli.py)
trains on AffectSynth sign.
"""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from affectlab.data.tokenizer import SubwordTokenizer
from affectlab.errors import ConfigError
from affectlab.methods.pose2text import Pose2Text, warmup_factor

SENTENCES = ["am morgen regnet es im norden", "der wind weht stark aus westen", "es bleibt trocken und warm",
             "im süden scheint die sonne", "nachts wird es kalt", "morgen gibt es gewitter"]
K, C, T = 5, 2, 8


def _sample(index: int, frames: int) -> dict:
    generator = torch.Generator().manual_seed(index)
    pose = torch.randn(T, K, C, generator=generator)  # each sentence its own trajectory
    pose_mask = torch.arange(T) < frames
    points = torch.ones(T, K, dtype=torch.bool)
    points[:, -1] = index % 2 == 0  # a keypoint missing in half the samples
    return {"pose": pose * pose_mask[:, None, None], "pose_mask": pose_mask, "pose_points_mask": points,
            "id": torch.tensor(index), "translation": SENTENCES[index]}


def _collate(samples: list[dict]) -> dict:
    batch = {k: torch.stack([s[k] for s in samples]) for k in ("pose", "pose_mask", "pose_points_mask", "id")}
    batch["targets"] = {"translation": [s["translation"] for s in samples]}
    return batch


class ToySign(pl.LightningDataModule):
    """Six sentences, each a fixed pose sequence; every split is the same six (memorise them)."""

    modalities = ("pose",)
    tasks = ("translation",)
    num_keypoints, num_channels, max_frames = K, C, T

    def __init__(self) -> None:
        super().__init__()
        self.samples = [_sample(i, T - i % 3) for i in range(len(SENTENCES))]

    def sentences(self, split: str) -> list[str]:
        return list(SENTENCES)

    def _loader(self) -> DataLoader:
        return DataLoader(self.samples, batch_size=3, collate_fn=_collate)

    train_dataloader = val_dataloader = test_dataloader = _loader


def _model(**kwargs) -> Pose2Text:
    options = dict(d_model=32, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=64,
                   dropout=0.0, mapper_dropout=0.0, vocab_size=60, label_smoothing=0.0, warmup_steps=5,
                   schedule="constant", num_beams=3, early_stopping_patience=None,
                   optimizer_init={"class_path": "torch.optim.AdamW", "init_args": {"lr": 3e-3}})
    return Pose2Text(**{**options, **kwargs})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pl.seed_everything(0)
    model, data = _model(), ToySign()
    trainer = pl.Trainer(max_epochs=60, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, check_val_every_n_epoch=30,
                         default_root_dir=tmp_path_factory.mktemp("toy"))
    trainer.fit(model, data)
    metrics = trainer.test(model, data, verbose=False)[0]
    return model, data, trainer, metrics


def test_tokenizer_round_trips():
    tokenizer = SubwordTokenizer.train(SENTENCES * 3, vocab_size=60)
    assert tokenizer.vocab_size <= 60
    for sentence in SENTENCES:
        ids = tokenizer.encode(sentence)
        assert ids and min(ids) > 3  # no specials inside a sentence
        assert tokenizer.decode(ids) == sentence
    again = SubwordTokenizer.from_bytes(tokenizer.to_bytes())
    assert [again.encode(s) for s in SENTENCES] == [tokenizer.encode(s) for s in SENTENCES]
    assert SubwordTokenizer.train(SENTENCES * 3, vocab_size=60).to_bytes() == tokenizer.to_bytes()  # deterministic


def test_memorises_the_toy_set(trained):
    model, data, _, metrics = trained
    assert model.mapper.num_keypoints == K and model.mapper.num_channels == C  # from the data module
    longest = max(len(model.tokenizer.encode(s)) for s in SENTENCES)
    assert model.max_length == -(-longest * 3 // 2) + 10  # ceil(1.5 x longest) + 10
    assert metrics["test/bleu"] > 50, metrics
    assert metrics["test/chrf"] > 50, metrics
    assert metrics["test/loss"] < 1.0, metrics


def test_checkpoint_carries_the_vocabulary(trained):
    model, data, trainer, _ = trained
    path = f"{trainer.default_root_dir}/toy.ckpt"
    trainer.save_checkpoint(path)
    checkpoint = torch.load(path, weights_only=True)  # as AffectLab loads every checkpoint
    assert checkpoint["pose2text"]["tokenizer"] == model.tokenizer.to_bytes()
    fresh = _model(num_keypoints=K, num_channels=C)
    fresh.load_state_dict(checkpoint["state_dict"])
    fresh.on_load_checkpoint(checkpoint)
    fresh.eval(), model.eval()
    batch = _collate(data.samples)
    assert fresh(batch) == model(batch)


def test_masked_points_and_frames_do_not_change_the_output(trained):
    model, data, _, _ = trained
    model.eval()
    batch = _collate(data.samples[1:2])  # its last frame is padding and its last keypoint missing
    changed = {**batch, "pose": batch["pose"].clone()}
    changed["pose"][:, -1] = 1e3  # a padded frame
    changed["pose"][:, :, -1] = float("nan")  # a missing keypoint
    with torch.no_grad():
        frames, mask = model._inputs(batch)
        frames2, mask2 = model._inputs(changed)
        memory, memory2 = model.seq2seq.encode(frames, mask), model.seq2seq.encode(frames2, mask2)
    assert torch.allclose(memory[mask], memory2[mask2], atol=1e-5)


def test_sizes_that_disagree_with_the_data_are_refused():
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(ConfigError, match=r"model.init_args.num_keypoints is 7 but the data serves 5"):
        trainer.fit(_model(num_keypoints=7, num_channels=C), ToySign())


def test_warm_up_then_schedule():
    assert warmup_factor(0, 4, "cosine", 100) == pytest.approx(0.25)
    assert warmup_factor(3, 4, "cosine", 100) == pytest.approx(1.0)
    assert warmup_factor(99, 4, "cosine", 100) == pytest.approx(0.0)
    assert warmup_factor(15, 4, "inverse_sqrt", 100) == pytest.approx(0.5)
    assert warmup_factor(50, 0, "constant", 100) == 1.0


def _tiny_bart(folder) -> None:
    """A randomly initialised BART and a word-level tokenizer over the toy sentences, saved as a local
    'pretrained' checkpoint (save_pretrained): what a user's downloaded model folder looks like."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    words = sorted({w for s in SENTENCES for w in s.split()})
    vocab = {token: i for i, token in enumerate(specials + words)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                            eos_token="</s>").save_pretrained(folder)
    config = BartConfig(vocab_size=len(vocab), d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                        max_position_embeddings=64, dropout=0.0, pad_token_id=0, bos_token_id=2, eos_token_id=3,
                        decoder_start_token_id=2, forced_eos_token_id=None)
    torch.manual_seed(0)
    BartForConditionalGeneration(config).save_pretrained(folder)


def test_a_local_pretrained_seq2seq_learns_the_toy_set(tmp_path):
    pytest.importorskip("transformers")
    _tiny_bart(tmp_path / "bart")
    pl.seed_everything(0)
    model, data = _model(pretrained=str(tmp_path / "bart")), ToySign()
    assert model.d_model == 32 and model.tokenizer.encode(SENTENCES[0])  # the checkpoint's width and vocabulary
    trainer = pl.Trainer(max_epochs=40, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, check_val_every_n_epoch=40,
                         default_root_dir=tmp_path)
    trainer.fit(model, data)
    metrics = trainer.test(model, data, verbose=False)[0]
    assert metrics["test/bleu"] > 50, metrics
    with pytest.raises(ConfigError, match="model.init_args.pretrained: .* is no folder"):
        _model(pretrained=str(tmp_path / "missing"))
