"""Every command of the README's ```bash blocks still works: each is run here (on tiny data, or with
``--print_config`` / ``--help`` where running it for real trains for minutes), or listed in ``CHECKED_ELSEWHERE``
with the reason it is not. A command added to the README and classified nowhere fails the test."""

from __future__ import annotations

import re
import shlex

import pytest

from conftest import ROOT, affectlab_inline

SUPERVISED = "configs/experiment/synth/supervised.yaml"
TINY = ["--num-clips", "12", "--num-identities", "3", "--num-frames", "2", "--image-size", "16"]


def readme_commands() -> list[str]:
    """The commands of the README's bash blocks: continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S):
        for command in block.replace("\\\n", " ").splitlines():
            command = " ".join(command.split("  #")[0].split())
            if command:
                commands.append(command)
    return commands


# README command -> the argument lists run for it (``{tmp}`` is a fresh folder). ``...`` in the README stands
# for the options of a run, here the supervised experiment's.
RUN = {
    f"affectlab run --config {SUPERVISED}": [["run", "--config", SUPERVISED, "--print_config"]],
    "affectlab run --model configs/model/supervised.yaml --data configs/data/synth.yaml --config my_edits.yaml "
    "--model.init_args.fusion_dim 128": [["run", "--model", "configs/model/supervised.yaml", "--data",
                                          "configs/data/synth.yaml", "--config", "{tmp}/my_edits.yaml",
                                          "--model.init_args.fusion_dim", "128", "--print_config"]],
    "affectlab run ... --commands fit-test-eval --config configs/eval/examine_incorrectly_classified_images.yaml": [
        ["run", "--config", SUPERVISED, "--commands", "fit-test-eval", "--config",
         "configs/eval/examine_incorrectly_classified_images.yaml", "--print_config"]],
    "affectlab fit|validate|test|predict ...": [[command, "--config", SUPERVISED, "--print_config"]
                                                 for command in ("fit", "validate", "test", "predict")],
    "affectlab run ... --print_config": [["run", "--config", SUPERVISED, "--print_config"]],
    "affectlab data synth --out data/synth --num-clips 1200 --seed 0": [
        ["data", "synth", "--out", "{tmp}/synth", "--seed", "0", *TINY]],
    "affectlab data export rafdb --out data/rafdb": [
        ["data", "export", "rafdb", "--out", "{tmp}/rafdb", "--cache", "{tmp}/cache", *TINY]],
    "affectlab data check rafdb --root data/rafdb": [
        ["data", "export", "rafdb", "--out", "{tmp}/rafdb", "--cache", "{tmp}/cache", *TINY],
        ["data", "check", "rafdb", "--root", "{tmp}/rafdb"]],
    "affectlab run --data rafdb --data.init_args.root ~/datasets/RAF-DB ...": [
        ["run", "--data", "rafdb", "--data.init_args.root", "{tmp}/RAF-DB", "--model", "configs/model/supervised.yaml",
         "--print_config"]],
    "affectlab recipe conclugen synth [--seed 0] [--finetune] [--per-modality]": [["recipe", "--help"]],
    "affectlab ablation [--seeds 0 1 2] [--pretrain-epochs 10]": [["ablation", "--help"]],
    "affectlab ablation mosei --data-root DIR [--variants ...]": [["ablation", "--help"]],
    "affectlab run --config configs/experiment/rafdb/supervised.yaml --data.init_args.root ~/datasets/RAF-DB": [
        ["run", "--config", "configs/experiment/rafdb/supervised.yaml", "--data.init_args.root", "{tmp}/RAF-DB",
         "--print_config"]],
    "affectlab export onnx --run_id <id> [--out model.onnx]": [["export", "--help"]],
    "affectlab ui [--store runs]": [["ui", "--help"]],
    "affectlab sweep --config configs/sweep/synth_supervised_grid.yaml [run options]": [["sweep", "--help"]],
    "affectlab summarize configs/sweep/synth_supervised_grid.yaml": [["summarize", "--help"]],
    "affectlab run ... --commands kfold --data.init_args.split kfold": [
        ["run", "--config", SUPERVISED, "--commands", "kfold", "--data.init_args.split", "kfold", "--print_config"]],
    "affectlab run --config configs/experiment/disfa/au_kfold.yaml --data.init_args.root DIR": [
        ["run", "--config", "configs/experiment/disfa/au_kfold.yaml", "--data.init_args.root", "{tmp}/DISFA",
         "--print_config"]],
    "affectlab run ... --commands tune-fit-test [--tune.scale_batch_size true]": [
        ["run", "--config", SUPERVISED, "--commands", "tune-fit-test", "--tune.scale_batch_size", "true",
         "--print_config"]],
    "affectlab ablation --from-records": [["ablation", "--help"]],
    f"affectlab run --config {SUPERVISED} --dry_run": [["run", "--config", SUPERVISED, "--dry_run", "--print_config"]],
    "affectlab recipe conclugen synth --seeds 0 1 2 [--dry_run]": [["recipe", "--help"]],
    f"affectlab repeat --times 3 --config {SUPERVISED}": [["repeat", "--help"]],
    "affectlab recipe clup synth [--seeds 0 1 2]": [["recipe", "clup", "--help"]],
    "affectlab run --model configs/model/clup/student.yaml --config configs/experiment/clup/afe_to_expw.yaml "
    "--data.init_args.root ~/datasets/ExpW --model.init_args.teacher_checkpoint SOURCE_RUN_ID "
    "--model.init_args.student_init SWAV_RUN_ID": [
        ["run", "--model", "configs/model/clup/student.yaml", "--config", "configs/experiment/clup/afe_to_expw.yaml",
         "--data.init_args.root", "{tmp}/ExpW", "--model.init_args.teacher_checkpoint", "SOURCE_RUN_ID",
         "--model.init_args.student_init", "SWAV_RUN_ID", "--print_config"]],
    "affectlab run --config configs/experiment/synth/multitask.yaml": [
        ["run", "--config", "configs/experiment/synth/multitask.yaml", "--print_config"]],
    "affectlab run --config configs/experiment/composite_sine/ntk.yaml": [
        ["run", "--config", "configs/experiment/composite_sine/ntk.yaml", "--print_config"]],
    "affectlab pose estimate --estimator mediapipe_holistic VIDEO_OR_FOLDER --out poses/": [["pose", "--help"]],
    "affectlab run --config configs/experiment/phoenix/pose2text.yaml --data.init_args.root DIR": [
        ["run", "--config", "configs/experiment/phoenix/pose2text.yaml", "--data.init_args.root", "{tmp}/PHOENIX",
         "--print_config"]],
    "affectlab recipe translation synth [--seeds 0 1 2]": [["recipe", "translation", "--help"]],
    "affectlab submit --status [JOB]": [["submit", "--status", "--store", "{tmp}"]],
}

CHECKED_ELSEWHERE = {
    "affectlab submit --launcher local run --config configs/experiment/synth/supervised.yaml":
        "trains as a job: tests/cli/test_submit.py submits tiny runs through the local executor",
    "affectlab submit --slurm.partition gpu --slurm.gpus_per_node 1 --slurm.time 4:00:00 run --config "
    "configs/experiment/synth/supervised.yaml": "needs a Slurm cluster: tests/cli/test_slurm.py starts one",
    "affectlab submit --slurm.array 8 --slurm.time 2:00:00 sweep --config my_sweep.yaml":
        "needs a Slurm cluster: tests/cli/test_slurm.py runs a sweep's workers as an array job",
    "affectlab submit --cancel JOB": "needs a running job: tests/cli/test_submit.py (make test-slow)",
    ".venv/bin/python -m pytest tests/cli/test_slurm.py [-m slow]": "part of make test (and make test-slow)",
    "docker build -t affectlab . && docker run --rm -v $PWD/runs:/app/runs affectlab affectlab demo":
        "needs a Docker daemon: tests/test_containers.py builds the image where one answers",
    "apptainer build affectlab.sif apptainer.def": "needs Apptainer: tests/test_containers.py checks the definition",
    f"affectlab run --config {SUPERVISED} --seeds 0 1 2":
        "trains one run per seed: tests/cli/test_seeds_dry_run.py runs --seeds on tiny data",
    "make demo": "creates .venv and installs the package, then trains (minutes): checked by hand and by CI",
    "make test": "the whole suite, this test included",
    ".venv/bin/affectlab ui": "starts a server: tests/cli/test_commands.py starts it on a free port and stops it",
    "affectlab test --run_id <id>": "needs a trained run: tests/cli/test_run.py trains one on tiny data and reuses it",
    "affectlab run --run_id <id>": "needs a killed run: tests/cli/test_reproducibility.py kills one and resumes it",
    "affectlab run ... --trainer.accelerator cpu --trainer.devices 2 --trainer.strategy ddp":
        "two processes training: tests/cli/test_ddp.py",
    "affectlab data prepare mosei --raw data/mosei --out data/mosei_store":
        "needs CMU-MOSEI's .csd files: tests/data prepares synthetic ones",
    "affectlab recipe conclugen synth": "pretrains for minutes: tests/cli/test_recipe.py runs a tiny recipe "
                                        "(the same command's options are checked above with --help)",
    "affectlab demo": "trains for minutes: tests/cli/test_commands.py runs the demo",
    "affectlab test --run_id <id> --data fer2013 --data.init_args.root DIR":
        "needs a trained source model: tests/cli/test_cross_domain.py trains one on exported AFE and tests it on FER2013",
    "affectlab data export synth_sign --out data/synth_sign":
        "writes hundreds of .pose files: tests/data/test_synth_sign.py exports a tiny set and reads it back",
    "affectlab data check phoenix --root data/synth_sign":
        "needs an export: tests/data/test_phoenix.py checks files in both PHOENIX layouts",
    "make pose-envs": "creates MediaPipe's own environment (minutes, downloads wheels): tests/cli/test_pose_cli.py "
                      "(slow-marked) builds it and estimates a real video",
    "affectlab predict --run_id <id> photo.jpg talk.mp4 frames/ [--backend onnx]":
        "needs a trained face model: tests/cli/test_predict.py trains one and predicts",
}


def test_every_readme_command_is_run_here_or_listed_as_checked_elsewhere():
    commands = set(readme_commands())
    assert commands, "no ```bash blocks found in README.md"
    assert commands - RUN.keys() - CHECKED_ELSEWHERE.keys() == set()
    assert (RUN.keys() | CHECKED_ELSEWHERE.keys()) - commands == set(), "classified commands the README no longer has"


@pytest.mark.parametrize("command", sorted(RUN))
def test_readme_command_works(command, tmp_path):
    (tmp_path / "my_edits.yaml").write_text("trainer:\n  max_epochs: 3\n")
    for args in RUN[command]:
        result = affectlab_inline(*[a.replace("{tmp}", str(tmp_path)) for a in args], cwd=ROOT)
        assert result.returncode == 0
        if "--print_config" in args:
            # a seed is always set: AffectLab's 127, or the seed's own where an experiment reproduces it (77, 42)
            assert "class_path:" in result.stdout and re.search(r"^seed_everything: \d+$", result.stdout, re.M), \
                shlex.join(args)
