"""Template utterances whose words carry the emotion, a fixed vocabulary, and the sentiment score.

Each emotion has a lexicon (a feeling adjective, an adjective for the topic, an interjection, a verb) slotted
into shared sentence frames. A few words are shared by related emotions ("shocked": surprise and fear, "hate":
disgust and anger, "upset": sad and anger), and some utterances are neutral on purpose, so text alone is not
enough.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from affectlab.data.contract import EMOTIONS

PAD, UNK = 0, 1

# Per emotion: words for each slot of the frames below.
_LEXICON: dict[str, dict[str, tuple[str, ...]]] = {
    "happy": {"feel": ("happy", "glad", "delighted", "thrilled"), "topic": ("wonderful", "great", "lovely"),
              "interjection": ("yay", "great"), "verb": ("love", "enjoy")},
    "sad": {"feel": ("sad", "unhappy", "heartbroken", "upset", "lonely"), "topic": ("terrible", "depressing"),
            "interjection": ("sigh",), "verb": ("miss", "lost")},
    "surprise": {"feel": ("surprised", "amazed", "astonished", "shocked"), "topic": ("unexpected", "unbelievable"),
                 "interjection": ("wow", "whoa", "oh"), "verb": ("never expected",)},
    "fear": {"feel": ("scared", "afraid", "terrified", "nervous", "shocked"), "topic": ("dangerous", "terrible"),
             "interjection": ("oh no", "help"), "verb": ("fear", "dread")},
    "disgust": {"feel": ("disgusted", "sickened", "grossed out"), "topic": ("disgusting", "gross", "nasty"),
                "interjection": ("yuck", "ew", "ugh"), "verb": ("hate", "loathe")},
    "anger": {"feel": ("angry", "furious", "mad", "upset"), "topic": ("unfair", "outrageous", "terrible"),
              "interjection": ("ugh", "enough"), "verb": ("hate", "resent")},
}
_SUBJECTS = (("i", "am"), ("we", "are"))  # (subject, its form of "to be")
_NOUNS = ("trip", "news", "meeting", "food", "result", "call", "movie", "letter", "game", "party")
# Sentence frames; {feel} etc. are filled from the emotion's lexicon, {noun} and {subj} from the lists above.
_FRAMES = (
    "{subj} {be} so {feel} about the {noun}",
    "this {noun} is {topic}",
    "{interjection} the {noun} was {topic}",
    "{subj} {verb} the {noun}",
    "{interjection} {subj} {be} {feel}",
    "the {noun} made me {feel}",
    "{subj} really {verb} this {noun}",
)
# Utterances without affective words, said by anyone.
_NEUTRAL = (
    "the {noun} is at noon",
    "{subj} went to the store on monday",
    "the bus leaves at six",
    "{subj} talked about the {noun} today",
    "the {noun} has two parts",
    "{subj} read the report about the {noun}",
    "it is a {noun} in the afternoon",
)


def _vocabulary() -> tuple[str, ...]:
    words = {w for pair in _SUBJECTS for w in pair} | set(_NOUNS)
    for text in _FRAMES + _NEUTRAL:
        words |= {w for w in text.split() if not w.startswith("{")}
    for lexicon in _LEXICON.values():
        for phrases in lexicon.values():
            words |= {w for phrase in phrases for w in phrase.split()}
    return ("<pad>", "<unk>", *sorted(words))


# The vocabulary: index 0 is padding, 1 is unknown, then the words in alphabetical order.
VOCAB: tuple[str, ...] = _vocabulary()
_INDEX = {word: i for i, word in enumerate(VOCAB)}


def encode(words: Iterable[str], length: int | None = None) -> np.ndarray:
    """Token ids of ``words`` (unknown words map to 1), padded with 0 or cut to ``length`` when given.

    Returns:
        ``[L]`` int32.
    """
    ids = [_INDEX.get(word, UNK) for word in words]
    if length is not None:
        ids = ids[:length] + [PAD] * max(0, length - len(ids))
    return np.asarray(ids, dtype=np.int32)


def decode(ids: Sequence[int] | np.ndarray) -> list[str]:
    """Words of token ids, padding dropped."""
    return [VOCAB[i] for i in np.asarray(ids).tolist() if i != PAD]


def utterance(emotion: int, rng: np.random.Generator, p_neutral: float = 0.35, p_conflict: float = 0.05) -> list[str]:
    """Draws the words said in one clip.

    Args:
        emotion: index into ``EMOTIONS`` of the clip's emotion.
        rng: the clip's random generator.
        p_neutral: probability of a neutral utterance whatever the emotion (always for neutral clips).
        p_conflict: probability that the words carry another emotion than the clip's (irony, a story told).
    """
    name = EMOTIONS[emotion]
    draw = rng.random()
    if name != "neutral" and draw >= p_neutral and draw < p_neutral + p_conflict:
        name = rng.choice([e for e in EMOTIONS if e not in ("neutral", name)])
    subject, be = _SUBJECTS[rng.integers(len(_SUBJECTS))]
    fill = {"subj": subject, "be": be, "noun": _NOUNS[rng.integers(len(_NOUNS))]}
    if name == "neutral" or draw < p_neutral:
        return _NEUTRAL[rng.integers(len(_NEUTRAL))].format(**fill).split()
    for slot, words in _LEXICON[name].items():
        fill[slot] = words[rng.integers(len(words))]
    return _FRAMES[rng.integers(len(_FRAMES))].format(**fill).split()


def sentiment(valence: float, rng: np.random.Generator, noise: float = 0.4) -> float:
    """A CMU-MOSEI-style sentiment score in [-3, 3]: the clip's valence scaled, plus annotator noise."""
    return float(np.clip(3.0 * valence + rng.normal(0.0, noise), -3.0, 3.0))
