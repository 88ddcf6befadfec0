"""Corpus BLEU and chrF with sacrebleu, as seed 003 scores its translations (``test_score.bleu``).

sacrebleu's defaults throughout (BLEU: 13a tokenisation, exponential smoothing, mixed case; chrF: character
6-grams, beta 2), one reference per hypothesis. Each score comes with its signature, which says exactly how it
was computed, and ``text`` is the line ``sacrebleu --format text`` prints (signature ``=`` score), the form the
run's ``test_score.bleu`` and ``test_score.chrf`` files hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CorpusScore:
    """One corpus-level score: its value (0-100), sacrebleu's signature and printed line."""

    name: str
    score: float
    signature: str
    text: str


def _check(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"translation scores: {len(hypotheses)} hypotheses for {len(references)} references")
    if not references:
        raise ValueError("translation scores: no sentences to score")


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> CorpusScore:
    """sacrebleu's corpus BLEU of ``hypotheses`` against one reference each."""
    from sacrebleu.metrics import BLEU

    _check(hypotheses, references)
    metric = BLEU()
    result = metric.corpus_score(list(hypotheses), [list(references)])
    signature = str(metric.get_signature())
    return CorpusScore("bleu", float(result.score), signature, result.format(signature=signature))


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> CorpusScore:
    """sacrebleu's corpus chrF of ``hypotheses`` against one reference each."""
    from sacrebleu.metrics import CHRF

    _check(hypotheses, references)
    metric = CHRF()
    result = metric.corpus_score(list(hypotheses), [list(references)])
    signature = str(metric.get_signature())
    return CorpusScore("chrf", float(result.score), signature, result.format(signature=signature))


def translation_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, CorpusScore]:
    """``{"bleu": ..., "chrf": ...}`` of one corpus."""
    return {"bleu": corpus_bleu(hypotheses, references), "chrf": corpus_chrf(hypotheses, references)}
