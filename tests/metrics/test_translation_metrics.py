"""BLEU and chrF (metrics/translation.py) equal sacrebleu's on known strings, signatures included."""

from __future__ import annotations

import pytest
import sacrebleu

from affectlab.metrics.translation import corpus_bleu, corpus_chrf, translation_scores

HYPOTHESES = ["am tag regnet es im norden", "der wind weht stark", "morgen wird es warm"]
REFERENCES = ["am tag regnet es im norden und osten", "der wind weht schwach", "morgen wird es sonnig und warm"]


def test_bleu_is_sacrebleus():
    expected = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES])
    bleu = corpus_bleu(HYPOTHESES, REFERENCES)
    assert bleu.score == pytest.approx(expected.score, abs=1e-9)
    assert 0 < bleu.score < 100
    assert bleu.signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert bleu.text.startswith(f"BLEU|{bleu.signature} = {expected.score:.2f}")


def test_bleu_of_identical_and_disjoint_text():
    assert corpus_bleu(REFERENCES, REFERENCES).score == pytest.approx(100.0)
    assert corpus_bleu(["x y z w"] * 3, REFERENCES).score == pytest.approx(0.0)


def test_chrf_is_sacrebleus():
    expected = sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES])
    chrf = corpus_chrf(HYPOTHESES, REFERENCES)
    assert chrf.score == pytest.approx(expected.score, abs=1e-9)
    assert chrf.text == f"chrF2|{chrf.signature} = {expected.score:.2f}"


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 hypotheses for 3 references"):
        translation_scores(HYPOTHESES[:2], REFERENCES)
