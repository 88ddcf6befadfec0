"""``affectlab run --seeds``: one parent of kind ``seeds``, a child per seed, mean ± std of every test metric on
the parent; ``--dry_run``: a sliver of every split, on CPU, in ``<exp_name>-dry``, tagged, and refused on a
real run's id. Every run is the real CLI on the tiny data."""

from __future__ import annotations

import statistics

import pytest

from conftest import affectlab, affectlab_inline, mlflow_client, printed_run_id, tiny_args


def _parent_id(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("parent_run_id: ")]
    assert lines, output
    return lines[0].split()[1]


@pytest.fixture(scope="module")
def seeds_group(tiny_data, tmp_path_factory):
    store = tmp_path_factory.mktemp("seeds")
    result = affectlab("run", *tiny_args(tiny_data, store, max_epochs=1), "--seeds", "0", "1",
                       "--exp_name", "tiny-seeds")
    return store, result


def test_seeds_make_one_parent_with_a_child_per_seed(seeds_group):
    store, result = seeds_group
    client = mlflow_client(store)
    parent = client.get_run(_parent_id(result.stdout))
    assert parent.data.tags["affectlab.group.kind"] == "seeds"
    assert parent.info.status == "FINISHED"
    experiment = client.get_experiment(parent.info.experiment_id)
    assert experiment.name == "tiny-seeds"  # the parent sits with its children: MLflow's UI nests them
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(c.data.tags["affectlab.seed"] for c in children) == ["0", "1"]
    assert {c.data.tags["affectlab.group.config"] for c in children} == {"{}"}
    # the seed reached the trainer: the two runs differ
    losses = [c.data.metrics["test/loss"] for c in children]
    assert losses[0] != losses[1]


def test_parent_holds_mean_and_std_of_every_test_metric(seeds_group):
    store, result = seeds_group
    client = mlflow_client(store)
    parent = client.get_run(_parent_id(result.stdout))
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    test_metrics = {k for k in children[0].data.metrics if k.startswith("test/")}
    assert "test/acc" in test_metrics
    for name in test_metrics:
        values = [c.data.metrics[name] for c in children]
        assert parent.data.metrics[f"{name}_mean"] == pytest.approx(statistics.fmean(values), abs=1e-9)
        assert parent.data.metrics[f"{name}_std"] == pytest.approx(statistics.stdev(values), abs=1e-9)
    table = client.download_artifacts(parent.info.run_id, "seeds.md")
    text = open(table).read()
    assert "| test/acc |" in text and all(c.info.run_id in text for c in children)
    assert "mean ± std over seeds 0, 1" in result.stdout and "test/acc" in result.stdout


def test_seeds_refuse_a_seed_given_twice(tiny_data, tmp_path):
    result = affectlab_inline("run", *tiny_args(tiny_data, tmp_path), "--seeds", "0", "--seed_everything", "3",
                              check=False)
    assert result.returncode == 2 and "--seed_everything is set by the group" in result.stderr


@pytest.fixture(scope="module")
def dry_run(tiny_data, tmp_path_factory):
    store = tmp_path_factory.mktemp("dry")
    # a schedule that a real run would take minutes over: the dry run cuts it to 2 steps
    result = affectlab("run", *tiny_args(tiny_data, store, max_epochs=50), "--exp_name", "tiny", "--dry_run",
                       "--commands", "fit-validate-test-predict", "--trainer.val_check_interval", "7")
    return store, result


def test_dry_run_runs_every_command_on_two_batches_in_its_own_experiment(dry_run):
    store, result = dry_run
    assert "dry run: 2 batches of each split" in result.stdout
    client = mlflow_client(store)
    run = client.get_run(printed_run_id(result.stdout))
    assert client.get_experiment(run.info.experiment_id).name == "tiny-dry"
    assert client.get_experiment_by_name("tiny") is None  # nothing in the real experiment to delete
    assert run.data.tags["affectlab.dry_run"] == "true"
    assert run.info.status == "FINISHED"
    # the tiny train split holds 4 batches of 8 clips and the config asks for 50 epochs: 2 steps ran
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss_step")]
    assert steps == [0, 1]
    assert "val/loss" in run.data.metrics  # validated at the end of the (short) epoch, not at step 7
    assert "test/acc" in run.data.metrics
    assert "predictions/predictions.csv" in {a.path for a in client.list_artifacts(run.info.run_id, "predictions")}


def test_dry_run_refuses_to_reuse_a_real_run(seeds_group):
    store, result = seeds_group  # the seeds' runs are real runs
    run_id = printed_run_id(result.stdout)
    result = affectlab("run", "--run_id", run_id, "--store", str(store), "--dry_run", "true", check=False)
    assert result.returncode == 2 and "is a real run" in result.stderr
    assert len(mlflow_client(store).get_run(run_id).data.tags) and "affectlab.dry_run" not in (
        mlflow_client(store).get_run(run_id).data.tags)


def test_seeds_are_taken_out_of_the_run_options():
    from affectlab.cli.seeds import split_seeds
    from affectlab.errors import ConfigError

    assert split_seeds(["--seeds", "0", "1", "--trainer.max_epochs", "2"]) == (["--trainer.max_epochs", "2"], [0, 1])
    assert split_seeds(["--config", "a.yaml", "--seeds=3,4"]) == (["--config", "a.yaml"], [3, 4])
    assert split_seeds(["--config", "a.yaml"]) == (["--config", "a.yaml"], None)
    with pytest.raises(ConfigError, match="seeds are integers"):
        split_seeds(["--seeds", "zero"])
    with pytest.raises(ConfigError, match="at least one seed"):
        split_seeds(["--seeds", "--trainer.max_epochs", "2"])
