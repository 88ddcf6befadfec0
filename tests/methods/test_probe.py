"""The linear probe: frozen means frozen, fine-tuning scales the backbone's lr, weights load strictly, class
weights are inverse to frequency, a trained backbone probes better than a random one, and the CLI runs it."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Trainer
from torch.utils.data import DataLoader

from affectlab.errors import ConfigError
from affectlab.methods import LinearProbe, SupervisedClassifier
from affectlab.methods.probe import inverse_frequency_weights, positive_weights
from affectlab.nn.encoders import AudioConvEncoder, TextTransformerEncoder
from conftest import CONFIGS, TEST_CONFIGS, affectlab, mlflow_client, printed_run_id, tiny_data_args


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models on a shared 2-core machine: a second torch thread only waits for the first.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _backbone(**options) -> SupervisedClassifier:
    """A small backbone: audio (with BatchNorm) and text encoders, the cheap ones."""
    encoders = {"audio": AudioConvEncoder(channels=16), "text": TextTransformerEncoder(vocab_size=128, dim=16)}
    return SupervisedClassifier(encoders, fusion_dim=16, **options)


def _trainer(**options) -> Trainer:
    return Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                   enable_checkpointing=False, **options)


def _adamw(lr: float) -> dict:
    return {"class_path": "torch.optim.AdamW", "init_args": {"lr": lr}}


def test_representations_are_what_the_supervised_forward_fuses(datamodule):
    backbone = _backbone().eval()
    batch = next(iter(datamodule.val_dataloader()))
    vectors = backbone.represent(batch)
    assert {m: v.shape[1] for m, v in vectors.items()} == backbone.representation_dims == {"audio": 16, "text": 16}
    assert torch.equal(backbone(batch)["embedding"], backbone.fusion(vectors))


def test_class_weights_are_inverse_to_frequency():
    weights = inverse_frequency_weights(torch.tensor([10, 5, 1]))
    assert weights[2] > weights[1] > weights[0]  # the rarer class weighs more (seed 000 had it the other way)
    assert torch.allclose(weights, torch.tensor([16 / 30, 16 / 15, 16 / 3]))  # N / (C n_c)
    assert torch.allclose(inverse_frequency_weights(torch.tensor([4, 4])), torch.ones(2))
    assert torch.allclose(positive_weights(torch.tensor([[90, 10], [50, 50], [7, 0]])), torch.tensor([9.0, 1.0, 7.0]))


def test_frozen_probe_trains_only_the_linear_layer(datamodule):
    torch.manual_seed(0)
    probe = LinearProbe(_backbone(), optimizer_init=_adamw(1e-2))
    backbone_before = {k: v.clone() for k, v in probe.backbone.state_dict().items()}  # weights and BN buffers
    classifier_before = probe.classifier.weight.clone()
    trainer = _trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=1)
    trainer.fit(probe, datamodule=datamodule)
    after = probe.backbone.state_dict()
    assert all(torch.equal(backbone_before[k], after[k]) for k in backbone_before)  # bit-identical
    assert not torch.equal(classifier_before, probe.classifier.weight)
    trained = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert trained == {id(p) for p in probe.classifier.parameters()}
    probe.train()  # what Lightning does every epoch; a forward pass puts the frozen backbone back in eval mode
    probe(next(iter(datamodule.train_dataloader())))
    assert probe.classifier.training and not any(m.training for m in probe.backbone.modules())
    expected = inverse_frequency_weights(datamodule.class_counts("emotion"))
    assert torch.allclose(probe.class_weights, expected)  # set from the data at setup
    metrics = trainer.callback_metrics
    for key in ("val/loss", "val/acc", "val/f1_weighted", "val/precision_macro", "val/f1/happy", "val/recall/anger"):
        assert key in metrics, key


def test_fine_tuning_trains_the_backbone_at_a_scaled_lr(datamodule):
    torch.manual_seed(0)
    probe = LinearProbe(_backbone(), freeze=False, backbone_lr_scale=0.1, optimizer_init=_adamw(1e-2))
    encoder_before = {k: v.clone() for k, v in probe.backbone.encoders.state_dict().items()}
    trainer = _trainer(max_steps=2, limit_val_batches=0)
    trainer.fit(probe, datamodule=datamodule)
    assert probe.automatic_optimization  # one optimiser, two param groups
    head, body = trainer.optimizers[0].param_groups
    assert head["lr"] == pytest.approx(1e-2) and body["lr"] == pytest.approx(1e-3)
    assert {id(p) for p in body["params"]} == {id(p) for p in probe.backbone.parameters()}
    after = probe.backbone.encoders.state_dict()
    assert any(not torch.equal(encoder_before[k], after[k]) for k in encoder_before)


def test_weights_load_from_a_lightning_checkpoint(tmp_path):
    trained = _backbone()
    path = tmp_path / "pretrain.ckpt"
    torch.save({"state_dict": trained.state_dict(), "epoch": 3}, path)
    probe = LinearProbe(_backbone(), checkpoint_path=str(path))
    loaded = probe.backbone.state_dict()
    assert all(torch.equal(v, loaded[k]) for k, v in trained.state_dict().items())


def test_a_wrong_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="checkpoint_path: checkpoint .*missing.ckpt does not exist"):
        LinearProbe(_backbone(), checkpoint_path=str(tmp_path / "missing.ckpt"))
    other = tmp_path / "other.ckpt"
    audio_only = SupervisedClassifier({"audio": AudioConvEncoder(channels=16)}, fusion_dim=16)
    torch.save({"state_dict": audio_only.state_dict()}, other)
    with pytest.raises(ConfigError, match=r"other\.ckpt do not fit SupervisedClassifier.*missing keys"):
        LinearProbe(_backbone(), checkpoint_path=str(other))
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(ConfigError, match=r"notes\.txt is not a checkpoint"):
        LinearProbe(_backbone(), checkpoint_path=str(text))


def test_a_module_without_representations_is_refused():
    with pytest.raises(ConfigError, match="model.init_args.backbone"):
        LinearProbe(torch.nn.Linear(2, 2))


def _train_accuracy(probe: LinearProbe, batch: dict, steps: int) -> float:
    optimiser = torch.optim.AdamW(probe.classifier.parameters(), lr=1e-2)
    probe.train()
    for _ in range(steps):
        loss = probe.loss(probe(batch), batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    probe.eval()
    with torch.no_grad():
        return (probe(batch).argmax(dim=-1) == batch["targets"]["emotion"]).float().mean().item()


def test_a_trained_backbone_probes_better_than_a_random_one(datamodule):
    torch.manual_seed(0)
    batch = next(iter(DataLoader(datamodule.dataset("train"), batch_size=64)))  # the whole train split
    trained = _backbone(dropout=0.0)
    optimiser = torch.optim.AdamW(trained.parameters(), lr=3e-3)
    for _ in range(60):  # overfit the train split: its representations become linearly separable
        loss = trained._losses(trained(batch), batch)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    torch.manual_seed(1)
    floor = _train_accuracy(LinearProbe(_backbone(), dropout=0.0), batch, steps=30)
    torch.manual_seed(1)
    pretrained = _train_accuracy(LinearProbe(trained, dropout=0.0), batch, steps=30)
    assert pretrained >= floor + 0.2, (pretrained, floor)


def test_multi_label_probe_logs_per_label_metrics(datamodule):
    probe = LinearProbe(_backbone(), task="au", num_classes=12, multi_label=True)
    trainer = _trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1)
    trainer.fit(probe, datamodule=datamodule)
    counts = datamodule.class_counts("au")
    assert torch.allclose(probe.class_weights, positive_weights(counts))
    metrics = trainer.callback_metrics
    for key in ("val/loss", "val/acc", "val/f1_weighted", "val/f1_macro", "val/f1/AU12", "val/acc/AU1"):
        assert key in metrics, key
    predictions = trainer.predict(probe, datamodule=datamodule)
    assert predictions[0]["probabilities"].shape == predictions[0]["prediction"].shape == (8, 12)


def test_probe_config_runs_through_the_cli(tiny_data, tmp_path):
    store = tmp_path / "store"
    args = ["--model", str(CONFIGS / "model/probe.yaml"), "--config", str(TEST_CONFIGS / "tiny_probe.yaml"),
            *tiny_data_args(tiny_data, store, max_epochs=1)]
    result = affectlab("run", *args, "--data.init_args.label_fraction", "0.5", "--commands", "fit-test")
    assert "test/f1_weighted" in result.stdout
    metrics = mlflow_client(store).get_run(printed_run_id(result.stdout)).data.metrics
    assert 0.0 <= metrics["test/f1_weighted"] <= 1.0
    assert "test/f1/neutral" in metrics and metrics["test/num_samples"] == 8
