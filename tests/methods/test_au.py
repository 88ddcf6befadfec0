"""AU heads (ordinal encoding, losses, activations) and the AU model on tiny AffectSynth."""

from __future__ import annotations

import functools

import pytest
import torch
from lightning.pytorch import Trainer

from conftest import CONFIGS, affectlab, affectlab_inline, mlflow_client, printed_run_id, tiny_data_args

from affectlab.methods import AUModel
from affectlab.nn.au_heads import IntensityHead, OccurrenceHead


def test_ordinal_encoding_and_decoding_on_the_0_to_5_scale():
    head = IntensityHead(8, aus=[1, 2], mode="ordinal")
    bits = head.encode(torch.tensor([[0.0, 3.0], [5.0, 1.4]]))
    assert bits.tolist() == [[[0, 0, 0, 0, 0], [1, 1, 1, 0, 0]], [[1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]]
    logits = (bits * 2 - 1) * 10  # confident logits for exactly those bits
    assert head.predict(logits).tolist() == [[0.0, 3.0], [5.0, 1.0]]


def test_heads_project_pool_and_take_their_losses():
    features = torch.randn(4, 8, 3, 3)
    occurrence = OccurrenceHead(8, aus=[1, 4, 12])
    logits = occurrence(features)
    assert logits.shape == (4, 3, 1)
    target = torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 0], [0, 0, 0]])
    occurrence.pos_weight.copy_(torch.tensor([1.0, 3.0, 1.0]))
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[..., 0], target, pos_weight=occurrence.pos_weight)
    assert torch.allclose(occurrence.loss(logits, target), expected)
    regression = IntensityHead(8, aus=[1], mode="regression")
    predicted = regression.predict(regression(features))
    assert predicted.shape == (4, 1) and ((predicted >= 0) & (predicted <= 5)).all()
    with pytest.raises(ValueError, match="AUs \\[3\\] are not among"):
        OccurrenceHead(8, aus=[1, 3])


def test_emotion_head_beside_the_au_heads():
    from affectlab.nn.au_heads import EmotionHead

    head = EmotionHead(8)
    logits = head(torch.randn(4, 8, 3, 3))
    assert logits.shape == (4, 1, 7) and head.aus == []
    target = torch.tensor([0, 3, 6, 1])
    assert torch.allclose(head.loss(logits, target), torch.nn.functional.cross_entropy(logits[:, 0], target))
    assert torch.allclose(head.predict(logits).sum(dim=1), torch.ones(4))


def test_au_model_learns_thresholds_and_logs_per_au_metrics(datamodule):
    from affectlab.nn.au_heads import EmotionHead

    heads = [functools.partial(OccurrenceHead, aus=[1, 2, 12]), functools.partial(IntensityHead, aus=[12, 25]),
             EmotionHead]
    model = AUModel("test_convnext", feature_stage=-1, heads=heads)
    trainer = Trainer(max_epochs=2, limit_train_batches=2, accelerator="cpu", logger=False, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=datamodule)
    metrics = trainer.callback_metrics
    assert {"val/au_f1_mean", "val/au_icc_mean", "val/au_mae_mean", "val/au_f1/AU12", "val/au_icc/AU25",
            "val/emotion_acc", "val/emotion_f1_macro"} <= set(metrics)
    counts = datamodule.class_counts("au")
    expected = counts[[0, 1, 6], 0].double() / counts[[0, 1, 6], 1].clamp(min=1).double()
    assert torch.allclose(model.heads[0].pos_weight.double(), expected)  # from the train split's counts
    assert ((model.thresholds_0 > 0) & (model.thresholds_0 < 1)).all()
    result = trainer.test(model, datamodule=datamodule, verbose=False)[0]
    assert "test/au_f1_mean" in result and "test/au_pearson_mean" in result


def test_au_heads_must_match_the_labelled_aus(datamodule, monkeypatch):
    from affectlab.errors import ConfigError

    monkeypatch.setitem(datamodule.class_names, "au", ("AU2", "AU4"))
    model = AUModel("test_convnext", heads=[functools.partial(OccurrenceHead, aus=[1, 2])])
    trainer = Trainer(fast_dev_run=True, accelerator="cpu", logger=False, enable_progress_bar=False)
    with pytest.raises(ConfigError, match=r"predicts AUs \[1\] that the data does not label \(it labels \[2, 4\]\)"):
        trainer.fit(model, datamodule=datamodule)


def test_au_experiment_runs_through_the_cli(tiny_data, tmp_path):
    store = tmp_path / "store"
    result = affectlab("run", "--config", str(CONFIGS / "experiment/au_synth.yaml"),
                       *tiny_data_args(tiny_data, store, max_epochs=1), "--trainer.limit_train_batches", "2",
                       "--model.init_args.backbone", "test_convnext", "--model.init_args.feature_stage", "-1", "--commands", "fit-test-predict")
    run_id = printed_run_id(result.stdout)
    client = mlflow_client(store)
    metrics = client.get_run(run_id).data.metrics
    assert "test/au_f1_mean" in metrics and "test/au_icc/AU12" in metrics
    plots = {a.path.split("/")[-1] for a in client.list_artifacts(run_id, "plots")}
    assert "test_per_au.png" in plots
    local = client.download_artifacts(run_id, "predictions/predictions.csv", str(tmp_path))
    header = open(local).readline().strip().split(",")
    assert "p_AU1" in header and "AU26_intensity" in header


def test_exported_onnx_model_matches_pytorch(tiny_data, tmp_path):
    import numpy as np
    import onnxruntime

    from affectlab.runs.models import load_run_model

    store = tmp_path / "store"
    result = affectlab("run", "--config", str(CONFIGS / "experiment/au_synth.yaml"),
                       *tiny_data_args(tiny_data, store, max_epochs=1), "--trainer.limit_train_batches", "2",
                       "--model.init_args.backbone", "test_convnext", "--model.init_args.feature_stage", "-1", "--commands", "fit")
    run_id = printed_run_id(result.stdout)
    exported = affectlab("export", "onnx", "--run_id", run_id, "--store", str(store), "--out", str(tmp_path / "au.onnx"))
    assert "onnxruntime matches PyTorch within" in exported.stdout
    model = load_run_model(run_id, str(store))  # the trained weights, not a fresh model
    frames = torch.rand(3, 1, 3, 32, 32)
    session = onnxruntime.InferenceSession(str(tmp_path / "au.onnx"))
    with torch.no_grad():
        expected = model.onnx_forward(frames)
    for got, want in zip(session.run(None, {"frames": frames.numpy()}), expected):
        assert np.abs(got - want.numpy()).max() < 1e-4
    assert [a.path for a in mlflow_client(store).list_artifacts(run_id, "export")] == ["export/au.onnx"]


def test_backbone_init_loads_an_earlier_runs_backbone_and_miro_takes_it_as_oracle(tmp_path):
    from affectlab.errors import ConfigError
    from affectlab.methods import MiroAU

    source = AUModel("test_convnext", feature_stage=-1)
    for p in source.backbone.parameters():
        torch.nn.init.normal_(p)  # far from any fresh initialisation
    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": source.state_dict()}, path)
    model = MiroAU(AUModel("test_convnext", feature_stage=-1, backbone_init=str(path)))
    for (name, a), b, c in zip(source.backbone.state_dict().items(), model.au_model.backbone.state_dict().values(),
                               model.oracle.state_dict().values()):
        assert torch.equal(a, b) and torch.equal(a, c), name
    wrapped = tmp_path / "miro.ckpt"  # a MIRO (or FixMatch) run's checkpoint: its keys start with au_model.
    torch.save({"state_dict": model.state_dict()}, wrapped)
    again = AUModel("test_convnext", feature_stage=-1, backbone_init=str(wrapped))
    assert all(torch.equal(a, b) for a, b in zip(source.backbone.state_dict().values(), again.backbone.state_dict().values()))
    with pytest.raises(ConfigError, match="does not fit this backbone"):
        AUModel("resnet10t", feature_stage=1, backbone_init=str(path))
    with pytest.raises(ConfigError, match="is not a file"):
        AUModel("test_convnext", backbone_init=str(tmp_path / "missing.ckpt"))


@pytest.mark.parametrize("method", ["FixMatchAU", "MiroAU"])
def test_au_variants_hold_the_au_model_and_train_it_with_its_optimizer(method):
    import affectlab.methods as methods
    from affectlab.errors import ConfigError

    au_model = AUModel("test_convnext", occurrence_threshold=0.3, augment=False, optimizer_init=[
        {"class_path": "torch.optim.AdamW", "params": ["backbone"], "init_args": {"lr": 1e-4}},
        {"class_path": "torch.optim.SGD", "init_args": {"lr": 1e-2}},
    ])
    model = getattr(methods, method)(au_model)
    assert model.deployed_model() is au_model and model.class_names == au_model.class_names
    own = set() if method == "FixMatchAU" else {"oracle", "log_var_raw"}  # checkpoint keys: au_model.* and MIRO's
    assert {k.split(".")[0] for k in model.state_dict()} == {"au_model", *own}
    backbone_opt, rest_opt = model.configure_optimizers()[0]  # the AU model's two optimisers, its prefixes kept
    owned = lambda opt: {id(p) for g in opt.param_groups for p in g["params"]}
    assert owned(backbone_opt) == {id(p) for p in au_model.backbone.parameters()}
    assert {g["lr"] for g in backbone_opt.param_groups} == {1e-4}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert owned(rest_opt) == trainable - owned(backbone_opt)  # the heads, and MIRO's variances
    if method == "MiroAU":
        assert sorted(g["lr"] for g in rest_opt.param_groups) == pytest.approx([1e-2, 1e-1])  # encoder_lr_scale 10
    with pytest.raises(ConfigError, match="model.init_args.au_model"):
        getattr(methods, method)(torch.nn.Linear(2, 2))


def test_the_semi_supervised_and_miro_configs_train_the_one_au_model():
    """FixMatch, DeFixMatch and MIRO name configs/model/au.yaml instead of copying it (the copies drifted), and
    each experiment's --print_config shows the AU experiment's architecture and optimiser, in one place."""
    import yaml

    for name in ("au_fixmatch", "au_defixmatch", "au_miro"):
        init_args = yaml.safe_load((CONFIGS / f"model/{name}.yaml").read_text())["init_args"]
        assert init_args["au_model"] == "au.yaml", name
        assert not set(init_args) & {"backbone", "feature_stage", "heads", "optimizer_init", "lr_scheduler_init"}, name

    def printed_model(experiment: str) -> dict:
        printed = affectlab_inline("run", "--config", str(CONFIGS / f"experiment/{experiment}.yaml"), "--print_config").stdout
        return yaml.safe_load(printed)["model"]

    au_model = printed_model("au_synth")
    assert au_model["class_path"] == "affectlab.methods.AUModel"
    assert au_model["init_args"]["heads"][0]["init_args"]["positive_weighting"] is True
    for experiment in ("au_fixmatch_synth", "au_defixmatch_synth", "au_miro_synth"):
        wrapper = printed_model(experiment)["init_args"]
        assert wrapper["au_model"] == au_model, experiment
        assert "optimizer_init" not in wrapper, experiment  # the optimiser is stated once, in au.yaml


def test_each_head_task_has_an_adapter_with_its_target_and_metrics():
    from affectlab.methods.au_tasks import EmotionTask, IntensityTask, OccurrenceTask, task_of
    from affectlab.metrics.action_units import AUIntensityMetrics, AUOccurrenceMetrics
    from affectlab.nn.au_heads import EmotionHead

    batch = {"targets": {"au": torch.tensor([[1, 0, 1], [0, 1, 0]]), "au_intensity": torch.tensor([[3, 0, 2], [0, 4, 0]]),
                         "emotion": torch.tensor([2, 5])}}
    occurrence, intensity, emotion = (task_of(h) for h in (OccurrenceHead(8, aus=[2, 4]), IntensityHead(8, aus=[1]),
                                                           EmotionHead(8)))
    assert (type(occurrence), type(intensity), type(emotion)) == (OccurrenceTask, IntensityTask, EmotionTask)
    assert occurrence.target(batch, [1, 2]).tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert intensity.target(batch, [0]).tolist() == [[3.0], [0.0]]
    assert emotion.target(batch, []).tolist() == [2, 5]
    assert isinstance(occurrence.make_metrics(), AUOccurrenceMetrics)
    assert isinstance(intensity.make_metrics(), AUIntensityMetrics)
    assert [t.pseudo_labelled for t in (occurrence, intensity, emotion)] == [True, False, False]
    prediction: dict[str, torch.Tensor] = {}
    for task, logits in ((occurrence, torch.zeros(2, 2, 1)), (intensity, torch.full((2, 1, 5), 10.0)),
                         (emotion, torch.zeros(2, 1, 7))):
        task.add_prediction(prediction, logits)
    assert sorted(prediction) == ["AU1_intensity", "emotion_probabilities", "probabilities"]
    assert prediction["AU1_intensity"].tolist() == [5.0, 5.0]


def test_a_head_of_an_unknown_task_is_refused():
    from affectlab.methods.au_tasks import task_of

    class GazeHead(OccurrenceHead):
        task = "gaze"

    with pytest.raises(ValueError, match="gaze"):
        task_of(GazeHead(8))
