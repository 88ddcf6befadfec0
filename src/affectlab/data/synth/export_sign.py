"""Write AffectSynth sign as PHOENIX-2014T is laid out, with one ``.pose`` file per sentence (pose-format).

``affectlab data export synth_sign --out DIR [--num-clips SENTENCES --num-identities SIGNERS --seed S]``
writes both layouts ``data/readers/phoenix.py`` reads:

    DIR/annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv   name|video|start|end|speaker|orth|translation
    DIR/poses/{train,dev,test}/<name>.pose                              MediaPipe Holistic components (pose-format)
    DIR/multimodalhugs/{train,dev,test}.tsv                             signal, signal_start, signal_end,
                                                                        encoder_prompt, decoder_prompt, output

The corpus CSVs are ``|``-separated with PHOENIX's header; ``video`` names the frame folder as PHOENIX does
(``<name>/1/*.png``, not written: the poses stand for the frames), ``start``/``end`` are -1, ``speaker``
``SignerNN``, ``orth`` the glosses and ``translation`` the sentence. The multimodalhugs TSVs point at the same
files (``signal`` relative to DIR), ``0``/``0`` meaning the whole file, with ``__dgs__`` / ``__de__`` as
prompts and the sentence as ``output``. The splits are the data module's ``split: random`` ones for the same
seed (``split_seed`` 0), so ``--data phoenix`` on the export serves what ``--data synth_sign`` serves.
Byte-for-byte deterministic for a seed; every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlab.data.splits import identity_split
from affectlab.data.synth.sign import SignConfig, generate, sample_name, sample_pose, signer_name
from affectlab.io import atomic_write_bytes, atomic_write_text

PHOENIX_SPLITS = {"train": "train", "val": "dev", "test": "test"}  # our split -> PHOENIX's file name
CORPUS_HEADER = "name|video|start|end|speaker|orth|translation"
TSV_HEADER = ("signal", "signal_start", "signal_end", "encoder_prompt", "decoder_prompt", "output")


def corpus_csv(split: str) -> str:
    return f"annotations/manual/PHOENIX-2014-T.{split}.corpus.csv"


def export_sign(out: str | Path, num_sentences: int = 600, num_signers: int = 6, vocabulary_size: int = 24,
                seed: int = 0, split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                split_seed: int = 0) -> dict[str, int]:
    """Write AffectSynth sign under ``out`` (module docstring); the sentences per PHOENIX split."""
    from affectlab.data.pose import pose_bytes

    out = Path(out)
    config = SignConfig(num_sentences=num_sentences, num_signers=num_signers, vocabulary_size=vocabulary_size,
                        seed=seed)
    samples = generate(config)
    splits = identity_split(np.arange(len(samples)), split_fractions, split_seed)
    counts = {}
    for ours, theirs in PHOENIX_SPLITS.items():
        rows, tsv = [CORPUS_HEADER], ["\t".join(TSV_HEADER)]
        for index in splits[ours]:
            sample, name = samples[int(index)], sample_name(int(index))
            signal = f"poses/{theirs}/{name}.pose"
            atomic_write_bytes(out / signal, pose_bytes(sample_pose(sample)))
            rows.append("|".join([name, f"{name}/1/*.png", "-1", "-1", signer_name(sample.signer),
                                  sample.sentence.gloss, sample.sentence.translation]))
            tsv.append("\t".join([signal, "0", "0", "__dgs__", "__de__", sample.sentence.translation]))
        atomic_write_text(out / corpus_csv(theirs), "\n".join(rows) + "\n")
        atomic_write_text(out / f"multimodalhugs/{theirs}.tsv", "\n".join(tsv) + "\n")
        counts[theirs] = len(splits[ours])
    return counts
