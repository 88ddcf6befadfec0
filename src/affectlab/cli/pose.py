"""``affectlab pose estimate|setup|list``: videos into ``.pose`` files with a pose estimator chosen by name
(``data/media/pose_estimation.py``; the worker protocol in ``data/media/pose_worker.py``, docs/sign.md)."""

from __future__ import annotations

import argparse

from affectlab.data.media.pose_estimation import ESTIMATORS, READY_MARK, envs_root

ESTIMATOR_HELP = "; ".join(f"{s.name}: {s.description}" for s in ESTIMATORS.values())


def pose_command(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="affectlab pose", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    estimate = sub.add_parser("estimate", help="one .pose file per video (resumable; exit 1 if a video was unreadable)")
    estimate.add_argument("inputs", nargs="+", metavar="VIDEO_OR_FOLDER", help="videos, or folders searched for them")
    estimate.add_argument("--estimator", required=True, choices=sorted(ESTIMATORS), help=ESTIMATOR_HELP)
    estimate.add_argument("--out", required=True, help="folder for the .pose files (each video's path below the "
                          "inputs' common folder); files already there are kept")
    estimate.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                          help="an estimator option (affectlab pose list shows them), repeatable")
    estimate.add_argument("--envs", default=None, help="folder of the estimators' environments (.venv-pose, or "
                          "$AFFECTLAB_POSE_ENVS)")
    estimate.add_argument("--max-frames", dest="max_frames", type=int, default=None,
                          help="estimate only each video's first N frames (a preview)")
    estimate.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    setup = sub.add_parser("setup", help="create an estimator's own virtual environment (pinned requirements)")
    setup.add_argument("names", nargs="+", choices=sorted(ESTIMATORS))
    setup.add_argument("--envs", default=None, help="where the environments go (.venv-pose)")
    setup.add_argument("--python", default=None, help="the interpreter the environment is made with (this one)")
    sub.add_parser("list", help="the estimators, their options and whether their environment is ready")
    options = parser.parse_args(args)
    if options.action == "list":
        for spec in ESTIMATORS.values():
            where = ("the main environment" if spec.requirements is None else
                     f"{envs_root() / spec.name} ({'ready' if (envs_root() / spec.name / READY_MARK).is_file() else 'not set up'})")
            print(f"{spec.name}: {spec.description}\n  runs in {where}")
            for key, text in spec.options.items():
                print(f"  --option {key}=...  {text}")
        return 0
    if options.action == "setup":
        from affectlab.data.media.pose_estimation import setup_env

        for name in options.names:
            print(f"{name}: {setup_env(name, options.envs, options.python)} ready", flush=True)
        return 0
    from affectlab.data.media.pose_estimation import estimate_poses, parse_options

    report = estimate_poses(options.estimator, options.inputs, options.out, parse_options(options.option),
                            envs=options.envs, max_frames=options.max_frames, progress=options.progress)
    print(f"pose estimate ({options.estimator} {' '.join(f'{k} {v}' for k, v in report.versions.items())}): "
          f"{len(report.written)} written, {len(report.kept)} kept from an earlier run, {len(report.failed)} unreadable")
    for path, frames in report.written.items():
        print(f"wrote {path} ({frames} frames)")
    for video, error in report.failed.items():
        print(f"skipped unreadable {video}: {error}")
    return 1 if report.failed else 0
