"""MIRO: the frozen oracle, the variance parameters' learning rate, the CLI."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from lightning.pytorch import Trainer

from conftest import CONFIGS, affectlab, mlflow_client, printed_run_id, tiny_data_args

from affectlab.methods import AUModel, MiroAU
from affectlab.losses.miro import VAR_EPS


def test_variances_start_at_var_init_and_oracle_stays_fixed(datamodule):
    model = MiroAU(AUModel("test_convnext", feature_stage=-1), var_init=0.1, miro_weight=1.0)
    assert all(torch.allclose(F.softplus(p) + VAR_EPS, torch.tensor(0.1)) for p in model.log_var_raw)
    assert len(model.log_var_raw) == len(model.au_model.backbone.stage_channels) == 4
    oracle = {k: v.clone() for k, v in model.oracle.state_dict().items()}
    before = {k: v.clone() for k, v in model.au_model.backbone.state_dict().items()}
    trainer = Trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=1, accelerator="cpu", logger=False,
                      enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=datamodule)
    assert all(torch.equal(oracle[k], v) for k, v in model.oracle.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in model.au_model.backbone.state_dict().items())
    assert torch.isfinite(trainer.callback_metrics["train/miro_epoch"])  # log var < 0: it can be negative
    optimizer = trainer.optimizers[0]
    rates = sorted({group["lr"] for group in optimizer.param_groups})
    assert math.isclose(rates[1] / rates[0], 10.0, rel_tol=1e-6)  # the variance parameters' own rate


def test_miro_leave_one_style_out_runs_through_the_cli(tiny_data, tmp_path):
    store = tmp_path / "store"
    result = affectlab("run", "--config", str(CONFIGS / "experiment/au_miro_synth.yaml"),
                       *tiny_data_args(tiny_data, store, max_epochs=1), "--data.init_args.split", "lodo",
                       "--data.init_args.fold", "1", "--trainer.limit_train_batches", "2",
                       "--model.init_args.au_model.init_args.backbone", "test_convnext",
                       "--model.init_args.au_model.init_args.feature_stage", "-1")
    run_id = printed_run_id(result.stdout)
    metrics = mlflow_client(store).get_run(run_id).data.metrics
    assert "test/au_f1_mean" in metrics and "train/miro_epoch" in metrics
    # Export and predict run the trained AU model alone (loaded with weights_only), without the oracle; the
    # export itself is the AU run's (tests/methods/test_au.py), not repeated here: it costs ~10 s.
    from affectlab.inference import head_specs
    from affectlab.io import load_checkpoint
    from affectlab.runs.models import load_deployed_model
    from affectlab.runs.store import RunStore

    state = load_checkpoint(RunStore.resolve(str(store)).checkpoint_dir(run_id) / "best.ckpt")["state_dict"]
    assert any(k.startswith("oracle.") for k in state) and any(k.startswith("log_var_raw.") for k in state)
    model = load_deployed_model(run_id, str(store))
    assert type(model) is AUModel and not model.training
    assert all(torch.equal(state[f"au_model.{k}"], v) for k, v in model.state_dict().items())
    assert [s.thresholds.tolist() for s in head_specs(model) if s.task == "au"] == [state["au_model.thresholds_0"].tolist()]
