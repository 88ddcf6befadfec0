"""``affectlab data synth|export|check|prepare``: data set tools; every name is looked up in
``affectlab.data.registry``."""

from __future__ import annotations

import argparse
import sys

from affectlab.data.registry import MAX_ROWS, check_dataset, dataset_names, export_dataset, prepare_dataset
from affectlab.errors import ConfigError, DataError

CHECK_CRASHED = 3  # data check's exit codes: 0 clean, 1 errors found, 2 could not start (main), 3 crashed


# data prepare's options for the 3D video backbone and the audio and text of MELD and CAER
# (data/store/video_prepare.py): flag, type, help.
MODALITY_OPTIONS = (
    ("--video3d-encoder", str, ("a torchvision video model (r3d_18, mc3_18, r2plus1d_18, ...): store its pooled "
                                "features per window of frames, beside --encoder's window mean if given (random "
                                "init unless --video3d-encoder-checkpoint; nothing is downloaded)")),
    ("--video3d-encoder-checkpoint", str, "a local state dict for --video3d-encoder"),
    ("--video3d-window", int, "sampled frames per --video3d-encoder window (16; the last one padded)"),
    ("--audio-encoder", str, ("a timm model name: store its pooled features of each clip's log-mel spectrogram "
                              "(random init unless --audio-encoder-checkpoint)")),
    ("--audio-encoder-checkpoint", str, "a local state dict for --audio-encoder (an image model's is adapted)"),
    ("--text-encoder", str, ("'affectlab' (TextTransformerEncoder) or a local transformers folder: store the "
                             "utterance's mean token embedding")),
    ("--text-encoder-checkpoint", str, "with --text-encoder affectlab: a local TextTransformerEncoder state dict"),
    ("--views", int, "feature views per clip, view 0 as is and the others augmented (1)"),
    ("--audio-seconds", float, "audio per clip at most, in seconds (10)"),
    ("--text-length", int, "tokens per utterance at most (48)"),
    ("--vocab-size", int, "vocabulary built from the train split's utterances, at most (512, as TextTransformerEncoder)"),
)


def data_command(args: list[str]) -> int:
    names = ", ".join(dataset_names())
    parser = argparse.ArgumentParser(prog="affectlab data", description="Data set tools.")
    sub = parser.add_subparsers(dest="action", required=True)
    synth = sub.add_parser("synth", help="generate AffectSynth into a folder (memory-mapped, checksummed)")
    synth.add_argument("--out", required=True, help="folder to write")
    _synth_options(synth)
    export = sub.add_parser("export", help="write AffectSynth in a real data set's native layout (for readers' tests)")
    export.add_argument("name", help="the data set whose layout to write: " + names)
    export.add_argument("--out", required=True, help="folder to write the data set into")
    export.add_argument("--cache", default="data/affectsynth", help="where AffectSynth is generated (or found)")
    export.add_argument("--styles", nargs="+", default=None,
                        help="AffectSynth render styles to draw (default: all for images; 'shaded' for videos, the "
                        "style MTCNN finds most reliably)")
    export.add_argument("--frames-per-clip", dest="frames_per_clip", type=int, default=None,
                        help="videos: frames per clip, the clip played back and forth (default: its own frames)")
    _synth_options(export)
    prepare = sub.add_parser("prepare", help="convert a data set once into a feature store (resumable)")
    prepare.add_argument("name", help="the feature or video data set to prepare: " + names)
    prepare.add_argument("--raw", required=True, help="the data set as distributed (a folder, or the MMSA pickle)")
    prepare.add_argument("--out", required=True, help="the feature store's folder")
    prepare.add_argument("--shard-samples", dest="shard_samples", type=int, default=None,
                         help="samples per shard (default 4096 for features, 256 for videos)")
    prepare.add_argument("--max-rows", dest="max_rows", type=int, default=MAX_ROWS,
                         help="feature rows per sample, at most")
    video = prepare.add_argument_group("video data sets (data/video_prepare.py)")
    video.add_argument("--num-frames", dest="num_frames", type=int, help="frames per clip, evenly spaced (default 8)")
    video.add_argument("--fps", type=float, help="instead: frames per second of video, at most --max-frames")
    video.add_argument("--max-frames", dest="max_frames", type=int, help="with --fps: frames per clip at most (64)")
    video.add_argument("--size", type=int, help="side of the square face crops in pixels (64)")
    video.add_argument("--scale", type=float, help="crop side over the detected face's size (1.3)")
    video.add_argument("--no-face", dest="no_face", choices=("nearest", "frame", "skip"),
                       help="a frame without a face: the nearest frame's face box (default), the whole frame, or "
                       "dropped")
    video.add_argument("--min-face-size", dest="min_face_size", type=int, help="MTCNN's smallest face in pixels (20)")
    video.add_argument("--device", help="where MTCNN and the encoders run (cpu, cuda)")
    video.add_argument("--encoder", help="a timm model name: store its pooled features of each face crop instead of "
                       "the crops (random init unless --encoder-checkpoint; nothing is downloaded)")
    video.add_argument("--encoder-checkpoint", dest="encoder_checkpoint",
                       help="a local state dict for --encoder (torch.save(model.state_dict(), PATH))")
    video.add_argument("--encoder-batch", dest="encoder_batch", type=int, help="crops per encoder forward pass (64)")
    for flag, kind, text in MODALITY_OPTIONS:
        video.add_argument(flag, dest=flag[2:].replace("-", "_"), type=kind, help=text)
    prepare.add_argument("--cameras", choices=("left", "right", "both"),
                         help="disfa: which cameras' videos to extract face frames from (left; --size default 128)")
    check = sub.add_parser("check", help="validate a data set on disk: counts, unreadable files, labels; exit 1 on errors found, "
                           "2 when the check cannot start, 3 when it crashed")
    check.add_argument("name", help="the data set: " + names)
    check.add_argument("--root", required=True, help="the data set's folder")
    check.add_argument("--quick", action="store_true", help="open every file without decoding it (faster, misses "
                       "truncated files)")
    options = parser.parse_args(args)
    if options.action == "synth":
        from affectlab.data.synth import synth_command

        synth_command(
            out=options.out, num_clips=options.num_clips, seed=options.seed, num_identities=options.num_identities,
            num_frames=options.num_frames, image_size=options.image_size,
        )
        return 0
    if options.action == "export":
        counts = export_dataset(options.name, options.out, cache=options.cache, num_clips=options.num_clips,
                                seed=options.seed, num_identities=options.num_identities, num_frames=options.num_frames,
                                image_size=options.image_size, styles=options.styles,
                                frames_per_clip=options.frames_per_clip)
        print(f"wrote {options.name} to {options.out}: " + ", ".join(f"{split} {n}" for split, n in counts.items()))
        return 0
    if options.action == "prepare":
        video_keys = ("num_frames", "fps", "max_frames", "size", "scale", "no_face", "min_face_size", "device",
                      "encoder", "encoder_checkpoint", "encoder_batch", "cameras",
                      *(flag[2:].replace("-", "_") for flag, _, _ in MODALITY_OPTIONS))
        video = {key: getattr(options, key) for key in video_keys if getattr(options, key) is not None}
        prepare_dataset(options.name, options.raw, options.out, shard_samples=options.shard_samples,
                        max_rows=options.max_rows, **video)
        return 0
    try:
        return check_dataset(options.name, options.root, decode=not options.quick)  # 0 clean, 1 errors found
    except (ConfigError, DataError):
        raise  # exit 2: the check could not start (an unknown name, a missing root), with its message
    except Exception as error:  # exit 3: the checker itself crashed, which is not "errors found"
        import traceback

        traceback.print_exc()
        print(f"affectlab: data check crashed ({type(error).__name__}: {error}); this is a bug in the checker, "
              "not a verdict on the data (exit 3)", file=sys.stderr)
        return CHECK_CRASHED


def _synth_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-clips", "--num_clips", dest="num_clips", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-identities", "--num_identities", dest="num_identities", type=int, default=60)
    parser.add_argument("--num-frames", "--num_frames", dest="num_frames", type=int, default=8)
    parser.add_argument("--image-size", "--image_size", dest="image_size", type=int, default=64)
