"""The CluP student on tiny AffectSynth: mixup's labels, weight norm that applies, the teacher pass without
augmentation, the selected subset served with its pseudo-labels, SwAV initialisation, one class order."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import StochasticWeightAveraging

from affectlab.data.contract import EMOTIONS
from affectlab.errors import ConfigError
from affectlab.losses.mixup import mix, mixup_loss
from affectlab.methods import CluP, SupervisedClassifier
from affectlab.methods import clup as clup_module
from affectlab.methods.clup import student_head
from affectlab.nn.encoders import FrameEncoder


def test_mixup_loss_mixes_both_labels_and_adds_the_unmixed_term():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [0.0, 0.0, 3.0]])
    y = torch.tensor([0, 1, 2])
    perm = torch.tensor([2, 0, 1])
    logp = F.log_softmax(logits, dim=1)
    ce_y = -logp[torch.arange(3), y].mean()
    ce_perm = -logp[torch.arange(3), y[perm]].mean()
    assert mixup_loss(logits, y, 0.3, perm).item() == pytest.approx((0.3 * ce_y + 0.7 * ce_perm).item())
    assert mixup_loss(logits, y, 0.3, perm, mixaug_alpha=0.5).item() == pytest.approx(
        (0.3 * ce_y + 0.7 * ce_perm + 0.5 * ce_y).item())
    soft = torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.6]])
    kl = lambda t: (t * (t.clamp_min(1e-30).log() - logp)).sum() / 3  # noqa: E731
    assert mixup_loss(logits, soft, 0.3, perm).item() == pytest.approx((0.3 * kl(soft) + 0.7 * kl(soft[perm])).item())


def test_mix_draws_one_lambda_per_batch_and_permutes():
    torch.manual_seed(0)
    x = torch.arange(4.0).view(4, 1)
    mixed, lam, perm = mix(x, 0.2)
    assert 0 <= lam <= 1 and sorted(perm.tolist()) == [0, 1, 2, 3]
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[perm])
    same, zero, perm0 = mix(x, 0.0)  # alpha 0: lambda 0, the permuted batch (the original's)
    assert zero == 0.0 and torch.equal(same, x[perm0])


@pytest.mark.parametrize("mlp", [False, True])
def test_weight_norm_applies_to_the_student_head(mlp):
    head = student_head(16, 7, weight_norm=True, mlp_head=mlp)
    last = head[-1] if mlp else head
    g = last.parametrizations.weight.original0  # (7, 1): each class row's norm
    assert torch.allclose(last.weight.norm(dim=1, keepdim=True), g)
    names = {n for n, _ in head.named_parameters()}
    assert any(n.endswith("original0") for n in names) and any(n.endswith("original1") for n in names)
    x = torch.randn(3, 16)
    before = head(x)
    with torch.no_grad():
        g.mul_(2)  # the magnitude is a parameter of its own: doubling it doubles the logits minus the bias
    assert torch.allclose(head(x) - last.bias, 2 * (before - last.bias), atol=1e-5)
    if mlp:
        assert [m.out_features for m in head if isinstance(m, torch.nn.Linear)] == [128, 7]


def _teacher() -> SupervisedClassifier:
    encoder = FrameEncoder("test_vit", {"img_size": 32})
    return SupervisedClassifier({"video": encoder}, fusion_dim=16, unimodal_weight=0.0, dropout=0.0)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clup")
    torch.manual_seed(1)
    teacher = _teacher()
    torch.save({"state_dict": teacher.state_dict()}, folder / "teacher.ckpt")
    swav = FrameEncoder("test_vit", {"img_size": 32})
    torch.save({"state_dict": {f"encoder.{k}": v for k, v in swav.state_dict().items()}
                | {"prototypes.weight": torch.zeros(5, 4)}}, folder / "swav.ckpt")
    return folder, teacher, swav


def _clup(folder, **kwargs) -> CluP:
    return CluP(_teacher(), FrameEncoder("test_vit", {"img_size": 32}), teacher_checkpoint=str(folder / "teacher.ckpt"),
                student_init=str(folder / "swav.ckpt"), num_prototypes=8, labeled_samples_size=0.5,
                kmeans_restarts=2, **kwargs)


def _trainer() -> Trainer:
    return Trainer(max_epochs=1, limit_val_batches=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False)


def test_fit_selects_with_an_unaugmented_teacher_and_trains_on_the_selection(checkpoints, datamodule, monkeypatch):
    folder, teacher, swav = checkpoints
    augmented = []
    real = clup_module.augment_frames
    monkeypatch.setattr(clup_module, "augment_frames", lambda v: augmented.append(v.shape) or real(v))
    model = _clup(folder, mode="soft-purity", iter_clusters=2, swa={"swa_lrs": 0.01, "swa_epoch_start": 0.5})
    served = []
    real_loss = model.training_loss
    model.training_loss = lambda batch, i: served.append(batch) or real_loss(batch, i)
    trainer = _trainer()
    trainer.fit(model, datamodule=datamodule)
    swa = [c for c in trainer.callbacks if isinstance(c, StochasticWeightAveraging)]
    assert len(swa) == 1 and int(swa[0].n_averaged) >= 1  # SWA ran (epoch 0 of 1) and averaged the student

    # the teacher and the SwAV encoder were loaded (the teacher also stays frozen and unchanged)
    for key, value in teacher.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[key], value), key
    assert not any(p.requires_grad for p in model.teacher.parameters())
    # the teacher pass: every train sample, in order, as the data module serves it (no augmentation)
    train = datamodule.dataset("train")
    outputs = model.teacher_pass(train, 8, progress=False)
    assert outputs["positions"].tolist() == list(range(len(train)))
    batch = torch.utils.data.default_collate([train[i] for i in range(4)])
    with torch.no_grad():
        expected = teacher.eval().represent(batch)["video"]
    assert torch.allclose(outputs["embeddings"][:4], expected, atol=1e-5)
    again = model.teacher_pass(train, 8, progress=False)
    assert torch.equal(again["embeddings"], outputs["embeddings"])  # deterministic: no random view
    # the selection (two rounds) is what the student was served, with the pseudo-labels as its targets
    selection = model.selection
    assert len(selection.rounds) == 2 and len(selection.indices) > 0
    assert len(set(selection.indices.tolist())) == len(selection.indices)
    by_position = dict(zip(selection.indices.tolist(), selection.labels.tolist()))
    seen = {int(p): int(y) for b in served for p, y in zip(b["position"], b["targets"]["emotion"])}
    assert seen and set(seen) <= set(by_position) and all(by_position[p] == y for p, y in seen.items())
    assert all(b["soft_target"].shape[1] == 7 for b in served)
    assert augmented, "the student trains on augmented frames"
    # after the fit the data module serves its whole train split again
    assert len(datamodule.train_dataloader().dataset) == len(train)


def test_student_starts_from_the_swav_encoder(checkpoints, datamodule):
    folder, _, swav = checkpoints
    model = _clup(folder)
    trainer = _trainer()
    model.trainer = trainer
    trainer.strategy.connect(model)
    trainer.datamodule = datamodule
    model.setup("fit")
    for key, value in swav.state_dict().items():
        assert torch.equal(model.student.state_dict()[key], value), key


def test_label_smoothing_and_freezing_the_student_encoder(checkpoints):
    logits, y = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    assert mixup_loss(logits, y, 1.0, torch.tensor([0]), label_smoothing=0.1).item() == pytest.approx(
        F.cross_entropy(logits, y, label_smoothing=0.1).item())
    model = _clup(checkpoints[0], freeze_student=True)
    assert not any(p.requires_grad for p in model.student.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.train()
    assert not model.student.training and not model.teacher.training  # frozen parts stay in eval mode
    with pytest.raises(ConfigError, match="swa_lrs"):
        _clup(checkpoints[0], swa={"swa_epoch_start": 0.5})


def test_one_class_order_and_clear_errors(checkpoints, datamodule):
    folder, _, _ = checkpoints
    assert CluP.monitor == "val/acc" and CluP.monitor_mode == "max"  # best.ckpt chosen on val, never on test
    model = _clup(folder)
    datamodule.class_names = {"emotion": tuple(sorted(EMOTIONS))}  # alphabetical: the original's defect
    with pytest.raises(ConfigError, match="canonical order"):
        _trainer().fit(model, datamodule=datamodule)
    with pytest.raises(ConfigError, match="num_prototypes"):
        CluP(_teacher(), FrameEncoder("test_vit", {"img_size": 32}), num_prototypes=7)
    with pytest.raises(ConfigError, match="mode"):
        CluP(_teacher(), FrameEncoder("test_vit", {"img_size": 32}), mode="centroid")
    with pytest.raises(ConfigError, match="neither a file nor a run id"):
        clup_module.load_run_weights(_teacher(), str(folder / "missing.ckpt"), "", "model.init_args.teacher_checkpoint")


def test_the_student_can_start_from_the_source_models_encoder(checkpoints, datamodule):
    # student_init_prefix: the source run's encoders.video.* start the student (self-training, where SwAV pretraining
    # cannot be afforded); frozen here, so after the fit it still holds exactly the teacher's encoder weights
    folder, teacher, _ = checkpoints
    model = CluP(_teacher(), FrameEncoder("test_vit", {"img_size": 32}), teacher_checkpoint=str(folder / "teacher.ckpt"),
                 student_init=str(folder / "teacher.ckpt"), student_init_prefix="encoders.video.", num_prototypes=8,
                 labeled_samples_size=0.5, kmeans_restarts=2, freeze_student=True)
    Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, accelerator="cpu", logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False).fit(model, datamodule=datamodule)
    source = {k.removeprefix("encoders.video."): v for k, v in teacher.state_dict().items() if k.startswith("encoders.video.")}
    assert source and all(torch.equal(model.student.state_dict()[k], v) for k, v in source.items())
