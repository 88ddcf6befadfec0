"""What BaseMethod checks for every method: the data module's declared modalities, tasks and class count."""

from __future__ import annotations

import pytest
from lightning.pytorch import LightningDataModule, Trainer

from affectlab.data.affectsynth import AffectSynthDataModule
from affectlab.errors import ConfigError
from affectlab.methods import BaseMethod, SupervisedClassifier
from affectlab.nn.encoders import AudioConvEncoder
from conftest import TINY_DATA


class _Undeclared(LightningDataModule):
    """Serves batches but says nothing about what they hold."""


class _Declared(LightningDataModule):
    def __init__(self, modalities: tuple[str, ...], tasks: tuple[str, ...], class_names: dict | None = None) -> None:
        super().__init__()
        self.modalities, self.tasks, self.class_names = modalities, tasks, class_names or {}


def _setup(model: BaseMethod, datamodule: LightningDataModule) -> None:
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.datamodule = datamodule
    model.trainer = trainer
    model.setup("fit")


def _model(**kwargs) -> SupervisedClassifier:
    return SupervisedClassifier({"audio": AudioConvEncoder(channels=8)}, fusion_dim=8, **kwargs)


def test_a_data_module_that_declares_no_modalities_fails():
    with pytest.raises(ConfigError, match=r"_Undeclared declares no modalities; the model needs \['audio'\]"):
        _setup(_model(), _Undeclared())


def test_a_data_module_that_declares_no_tasks_fails():
    data = _Undeclared()
    data.modalities = ("audio",)
    with pytest.raises(ConfigError, match=r"declares no tasks; the model needs \['emotion'\]"):
        _setup(_model(), data)


def test_declared_modalities_and_tasks_pass_and_missing_ones_fail():
    _setup(_model(), _Declared(("audio", "video"), ("emotion",)))
    with pytest.raises(ConfigError, match=r"modalities \['audio'\].*does not serve"):
        _setup(_model(), _Declared(("video",), ("emotion",)))
    with pytest.raises(ConfigError, match=r"tasks \['emotion'\]"):
        _setup(_model(), _Declared(("audio",), ("au",)))


def test_class_count_mismatch_is_a_config_error_naming_the_key():
    data = _Declared(("audio",), ("emotion",), {"emotion": ["a", "b", "c"]})
    with pytest.raises(ConfigError, match=r"model.init_args.num_classes is 7 .* set model.init_args.num_classes: 3"):
        _setup(_model(), data)
    model = _model(num_classes=3)
    _setup(model, data)
    assert model.class_names == ["a", "b", "c"]


def test_a_real_reader_with_other_classes_fails_before_training(tiny_data):
    data = AffectSynthDataModule(root=str(tiny_data), modalities=["audio"], **TINY_DATA)
    trainer = Trainer(fast_dev_run=1, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(ConfigError, match="model.init_args.num_classes is 5"):
        trainer.fit(_model(num_classes=5), datamodule=data)


def test_frozen_modules_stay_in_eval_through_train_and_a_fit_with_validation(datamodule):
    model = SupervisedClassifier({"audio": AudioConvEncoder(channels=8)}, fusion_dim=8)
    assert model.frozen_modules() == []
    probe_like = _FrozenAudio()
    probe_like.train()
    assert probe_like.training and not probe_like.encoders.training
    modes = []
    probe_like.on_train_batch_start = _recording(probe_like, modes)
    trainer = Trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=1, accelerator="cpu", logger=False,
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(probe_like, datamodule=datamodule)
    assert modes == [(True, False)] * 4  # (method, frozen encoders) at every training step, after validation too


class _FrozenAudio(SupervisedClassifier):
    def __init__(self) -> None:
        super().__init__({"audio": AudioConvEncoder(channels=8)}, fusion_dim=8, lr_scheduler_init=None)
        self.encoders.requires_grad_(False)

    def frozen_modules(self) -> list:
        return [self.encoders]


def _recording(model: BaseMethod, modes: list):
    hook = model.on_train_batch_start

    def record(batch, batch_idx):
        hook(batch, batch_idx)
        modes.append((model.training, model.encoders.training))

    return record
