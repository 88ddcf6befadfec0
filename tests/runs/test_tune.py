"""``tune`` in the command chain (issue 18.9): Lightning's Tuner scales the batch size and finds the learning rate,
logs its choice and the finder's plot, and the fit after it runs with that choice."""

from __future__ import annotations

import pytest
import torch

from affectlab.errors import ConfigError
from affectlab.methods.base import BaseMethod
from affectlab.runs.tune import check_tune_chain
from conftest import affectlab, affectlab_inline, mlflow_client, printed_run_id, tiny_args


def test_tune_logs_its_choice_and_plot_and_the_fit_uses_them(tiny_data, tmp_path):
    store = tmp_path / "runs"
    result = affectlab("run", *tiny_args(tiny_data, store, 1), "--commands", "tune-fit",
                       "--tune.lr_find_kwargs.num_training", "20", "--tune.scale_batch_size", "true",
                       "--tune.scale_batch_size_kwargs.max_trials", "2", cwd=tmp_path)
    client = mlflow_client(store)
    run = client.get_run(printed_run_id(result.stdout))
    lr, batch_size = run.data.metrics["tune/lr"], run.data.metrics["tune/batch_size"]
    assert batch_size == 4  # from 2, doubled once (max_trials 2): the search ran, it did not keep the config's 8
    assert lr != 1e-3 and 1e-8 <= lr <= 1  # the config's AdamW lr is 1e-3; the finder's range is its default
    assert run.data.params["tune/lr"] == f"{lr:.6g}" and run.data.params["tune/batch_size"] == "4"
    assert f"tune: batch_size 4, lr {lr:.6g}" in result.stdout
    # the fit: its optimiser ran at the chosen rate, over 32 train clips in batches of 4
    assert [m.value for m in client.get_metric_history(run.info.run_id, "lr-AdamW")] == [pytest.approx(lr)]
    assert len(client.get_metric_history(run.info.run_id, "train/loss_step")) == 32 // 4
    plot = client.download_artifacts(run.info.run_id, "plots/lr_find.png", str(tmp_path))
    assert open(plot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    leftovers = [p for p in tmp_path.rglob("*.ckpt") if p.name.startswith((".lr_find", ".scale_batch"))]
    assert not leftovers  # the Tuner's temporary checkpoints are removed, and were never in the working folder

    # a reused run whose fit resumes from last.ckpt is not tuned again; its batch size is the one chosen before
    again = affectlab("run", "--run_id", run.info.run_id, "--store", str(store), "--commands", "tune-fit", cwd=tmp_path)
    assert "tune: skipped, the fit resumes from last.ckpt (batch size 4;" in again.stdout
    assert len(client.get_metric_history(run.info.run_id, "tune/lr")) == 1


def test_the_learning_rate_is_the_typed_optimizers_and_setting_it_keeps_the_other_arguments():
    method = BaseMethod({"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1, "momentum": 0.9}})
    method.layer = torch.nn.Linear(2, 2)
    assert method.lr == 0.1
    method.lr = 0.5
    (optimizer,), _ = method.configure_optimizers()
    assert optimizer.param_groups[0]["lr"] == 0.5 and optimizer.param_groups[0]["momentum"] == 0.9
    several = BaseMethod([{"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}, "name": "a", "params": ["x"]},
                          {"class_path": "torch.optim.AdamW", "name": "b"}])
    assert not hasattr(several, "lr")  # Lightning's finder then finds no lr; the CLI refuses first (below)


def test_tune_is_refused_where_it_would_choose_for_nothing(tiny_data, tmp_path):
    check_tune_chain(["tune", "fit", "test"])
    check_tune_chain(["tune", "fit", "test", "eval"])
    for chain in (["tune", "test"], ["fit", "tune"], ["tune", "fit", "tune", "fit"]):
        with pytest.raises(ConfigError, match="tune chooses the learning rate and batch size of the fit after it"):
            check_tune_chain(chain)
    misspelt = affectlab_inline("run", *tiny_args(tiny_data, tmp_path / "runs", 1), "--commands", "tune-fit",
                                "--tune.lr_find_kwargs.num_trainin", "5", check=False)
    assert misspelt.returncode == 2 and "tune.lr_find_kwargs.num_training" in misspelt.stderr
    two = tmp_path / "two_optimisers.yaml"
    two.write_text("model:\n  init_args:\n    optimizer_init:\n"
                   "      - {name: encoders, params: [encoders], optimizer: {class_path: torch.optim.AdamW}}\n"
                   "      - {name: heads, optimizer: {class_path: torch.optim.SGD, init_args: {lr: 0.1}}}\n")
    # the single optimiser of supervised.yaml cleared first: jsonargparse would merge it into the list
    result = affectlab_inline("run", *tiny_args(tiny_data, tmp_path / "runs", 1), "--commands", "tune-fit",
                              "--model.init_args.optimizer_init", "null", "--config", str(two), check=False)
    assert result.returncode == 2 and "tune.lr_find: SupervisedClassifier has 2 optimisers" in result.stderr
    assert "--tune.lr_find false" in result.stderr and not (tmp_path / "runs" / "mlflow.db").exists()
