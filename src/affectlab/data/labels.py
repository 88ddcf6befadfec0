"""How each data set's own emotion labels map onto AffectLab's seven (``contract.EMOTIONS``): one table, made
from the readers' ``LABEL_CODES`` so that the table in ``docs/architecture.md`` cannot drift from the code
(``tests/data/test_label_table.py`` compares them)."""

from __future__ import annotations

import importlib

from affectlab.data.contract import EMOTIONS

# data set -> the reader module whose LABEL_CODES (its own code or name -> canonical emotion, None: left out) it uses
READERS = {
    "fer2013": "affectlab.data.readers.fer2013",
    "rafdb": "affectlab.data.readers.rafdb",
    "expw": "affectlab.data.readers.expw",
    "affectnet": "affectlab.data.readers.affectnet",
    "caer_s": "affectlab.data.readers.caer_s",
    "afe": "affectlab.data.readers.afe",
}


def label_codes(name: str) -> dict[str | int, str | None]:
    return importlib.import_module(READERS[name]).LABEL_CODES


def mapping_table() -> str:
    """Markdown: one row per data set, one column per canonical emotion holding the data set's code for it,
    and a last column with the codes left out."""
    header = ["data set", *EMOTIONS, "left out"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in READERS:
        codes = label_codes(name)
        cells = [", ".join(f"`{code}`" for code, emotion in codes.items() if emotion == canonical) or "-"
                 for canonical in EMOTIONS]
        left_out = ", ".join(f"`{code}`" for code, emotion in codes.items() if emotion is None) or "-"
        rows.append("| " + " | ".join([f"`{name}`", *cells, left_out]) + " |")
    return "\n".join(rows)
