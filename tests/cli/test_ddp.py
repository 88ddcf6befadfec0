"""Scale-out through Lightning: --trainer.strategy ddp on two CPU processes, metrics reduced across them,
only rank 0 writing to the run store."""

from __future__ import annotations

from pathlib import Path

from conftest import CONFIGS, affectlab, mlflow_client, printed_run_id, tiny_args


def test_ddp_on_two_cpu_processes(tiny_data, tmp_path):
    store = tmp_path / "store"
    result = affectlab(
        "run", *tiny_args(tiny_data, store, max_epochs=1),
        "--config", str(CONFIGS / "trainer/ddp_cpu.yaml"),
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
        timeout=400,
    )
    run_id = printed_run_id(result.stdout)
    assert result.stdout.count("run_id: ") == 2  # the id line and the closing summary, from rank 0 only
    client = mlflow_client(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.run_id for r in runs] == [run_id]  # rank 1 opened no run of its own
    metrics = client.get_run(run_id).data.metrics
    # Each test sample counted once over both processes: the reduced count is the whole test split.
    assert metrics["test/num_samples"] == 8
    names = [Path(a.path).name for a in client.list_artifacts(run_id)]
    assert names.count("config.yaml") == 1 and not any(n.startswith("config_") for n in names)
    env_world = client.get_run(run_id).data.params["trainer.strategy"]
    assert env_world == "ddp"
    # issue 16.9: epoch values are reduced at the source (BaseMethod.log), so Lightning's per-key advice is gone
    assert "sync_dist=True" not in result.stderr, result.stderr
