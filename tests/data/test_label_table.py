"""The emotion-label table in docs/architecture.md is the one the readers' LABEL_CODES make."""

from __future__ import annotations

import re

from affectlab.data.contract import EMOTIONS
from affectlab.data.labels import READERS, label_codes, mapping_table
from conftest import ROOT


def test_the_documented_table_is_the_code_s():
    text = (ROOT / "docs/architecture.md").read_text()
    documented = re.search(r"<!-- label table: .*? -->\n(.*?)\n<!-- end label table -->", text, flags=re.S)
    assert documented, "docs/architecture.md lost its label table markers"
    assert documented.group(1) == mapping_table()


def test_every_code_maps_to_a_canonical_emotion_or_is_left_out_and_each_emotion_is_reachable():
    for name in READERS:
        codes = label_codes(name)
        assert set(codes.values()) - {None} <= set(EMOTIONS), name
        assert set(EMOTIONS) <= set(codes.values()), f"{name} leaves a canonical emotion without a code"
