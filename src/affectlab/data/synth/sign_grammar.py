"""AffectSynth sign's grammar: gloss sequences and the German-like sentences they translate to.

A sentence says who does what to what, optionally when, with adjectives and a negation. The glosses follow a
sign language's order, the sentence German's, so a translation model has to reorder, not transcribe:

- glosses, topic-comment and verb-final: ``[TIME] OBJECT [ADJ] SUBJECT [ADJ] VERB [NICHT]``
  (``MORGEN HUND KLEIN MANN SEHEN NICHT``; adjectives follow their noun, as in DGS);
- sentence, verb second (V2), with the articles, case and inflections the glosses lack:
  ``morgen sieht der mann den kleinen hund nicht .`` (nominative subject, accusative object, the adjective's
  weak ending after the definite article, the verb in the third person singular), lower-case and with the
  full stop split off, as PHOENIX-2014T's translations are written.

``vocabulary_size`` takes the first entries of each word list in fixed proportions, so a small vocabulary is
a prefix of a larger one (the same seed then draws comparable sentences).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# gloss, German noun, gender (m, f, n)
NOUNS = (
    ("MANN", "mann", "m"), ("FRAU", "frau", "f"), ("KIND", "kind", "n"), ("HUND", "hund", "m"),
    ("KATZE", "katze", "f"), ("HAUS", "haus", "n"), ("AUTO", "auto", "n"), ("BUCH", "buch", "n"),
    ("LEHRER", "lehrer", "m"), ("STADT", "stadt", "f"), ("BAUM", "baum", "m"), ("BLUME", "blume", "f"),
)
# gloss, third person singular present
VERBS = (
    ("SEHEN", "sieht"), ("KAUFEN", "kauft"), ("SUCHEN", "sucht"), ("MALEN", "malt"), ("FINDEN", "findet"),
    ("LIEBEN", "liebt"), ("FRAGEN", "fragt"), ("HOLEN", "holt"),
)
# gloss, adjective stem
ADJECTIVES = (("GROSS", "groß"), ("KLEIN", "klein"), ("ALT", "alt"), ("NEU", "neu"), ("ROT", "rot"),
              ("MUEDE", "müde"))
# gloss, German adverbial
TIMES = (("HEUTE", "heute"), ("MORGEN", "morgen"), ("JETZT", "jetzt"), ("MONTAG", "am montag"))
NEGATION = ("NICHT", "nicht")

NOMINATIVE = {"m": "der", "f": "die", "n": "das"}
ACCUSATIVE = {"m": "den", "f": "die", "n": "das"}
MAX_VOCABULARY = len(NOUNS) + len(VERBS) + len(ADJECTIVES) + len(TIMES) + 1
MIN_VOCABULARY = 4  # two nouns, a verb and the negation


@dataclass(frozen=True)
class Vocabulary:
    """The word lists a data set draws from (a prefix of each list above)."""

    nouns: tuple[tuple[str, str, str], ...]
    verbs: tuple[tuple[str, str], ...]
    adjectives: tuple[tuple[str, str], ...]
    times: tuple[tuple[str, str], ...]

    @property
    def glosses(self) -> list[str]:
        """Every gloss the data set can sign, in a fixed order (NICHT last)."""
        return ([n[0] for n in self.nouns] + [v[0] for v in self.verbs] + [a[0] for a in self.adjectives]
                + [t[0] for t in self.times] + [NEGATION[0]])


def vocabulary(size: int) -> Vocabulary:
    """The first ``size`` glosses: about 40 % nouns, 25 % verbs, 20 % adjectives, the rest time words, and NICHT."""
    if not MIN_VOCABULARY <= size <= MAX_VOCABULARY:
        raise ValueError(f"vocabulary_size {size} is not between {MIN_VOCABULARY} and {MAX_VOCABULARY} glosses")
    left = size - 1  # NICHT is always there
    counts = {"nouns": 2, "verbs": 1, "adjectives": 0, "times": 0}
    left -= 3
    limits = {"nouns": len(NOUNS), "verbs": len(VERBS), "adjectives": len(ADJECTIVES), "times": len(TIMES)}
    shares = {"nouns": 0.4, "verbs": 0.25, "adjectives": 0.2, "times": 0.15}
    while left > 0:  # one gloss at a time to the category furthest below its share
        open_ = [k for k in counts if counts[k] < limits[k]]
        total = sum(counts.values()) + 1
        pick = min(open_, key=lambda k: (counts[k] / total - shares[k], list(counts).index(k)))
        counts[pick] += 1
        left -= 1
    return Vocabulary(NOUNS[:counts["nouns"]], VERBS[:counts["verbs"]], ADJECTIVES[:counts["adjectives"]],
                      TIMES[:counts["times"]])


@dataclass(frozen=True)
class Sentence:
    """One drawn sentence: its glosses (sign order) and its translation (German order)."""

    glosses: tuple[str, ...]
    translation: str

    @property
    def gloss(self) -> str:
        return " ".join(self.glosses)


def _noun_phrase(noun: tuple[str, str, str], adjective: tuple[str, str] | None, accusative: bool) -> str:
    gender = noun[2]
    article = (ACCUSATIVE if accusative else NOMINATIVE)[gender]
    if adjective is None:
        return f"{article} {noun[1]}"
    ending = "en" if accusative and gender == "m" else "e"  # weak declension after the definite article
    return f"{article} {adjective[1]}{ending} {noun[1]}"


def draw_sentence(rng: np.random.Generator, words: Vocabulary, p_time: float = 0.4, p_adjective: float = 0.3,
                  p_negation: float = 0.2) -> Sentence:
    """One sentence of the grammar (module docstring), drawn with ``rng``."""
    subject_i, object_i = rng.choice(len(words.nouns), size=2, replace=False)
    subject, object_ = words.nouns[int(subject_i)], words.nouns[int(object_i)]
    verb = words.verbs[int(rng.integers(len(words.verbs)))]

    def adjective() -> tuple[str, str] | None:
        if not words.adjectives or rng.random() >= p_adjective:
            return None
        return words.adjectives[int(rng.integers(len(words.adjectives)))]

    subject_adj, object_adj = adjective(), adjective()
    time = words.times[int(rng.integers(len(words.times)))] if words.times and rng.random() < p_time else None
    negated = rng.random() < p_negation
    glosses = ([time[0]] if time else []) + [object_[0]] + ([object_adj[0]] if object_adj else [])
    glosses += [subject[0]] + ([subject_adj[0]] if subject_adj else []) + [verb[0]]
    glosses += [NEGATION[0]] if negated else []
    subject_np = _noun_phrase(subject, subject_adj, accusative=False)
    object_np = _noun_phrase(object_, object_adj, accusative=True)
    words_out = [time[1], verb[1], subject_np] if time else [subject_np, verb[1]]
    words_out += [object_np] + ([NEGATION[1]] if negated else []) + ["."]
    return Sentence(tuple(glosses), " ".join(words_out))
