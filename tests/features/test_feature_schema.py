"""The feature schema: one definition in C++, read by Python; its hash is stable and moves
with any name or unit; docs/features.md shows exactly its table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sor import _core
from sor.errors import UsageError
from sor.features import FEATURE_SCHEMA, FeatureSchema

DOC = Path(__file__).resolve().parents[2] / "docs" / "features.md"
START, END = "<!-- feature-table:start -->", "<!-- feature-table:end -->"

# The hash of revision 1. Changing it is a deliberate act: every trained model is refused.
REVISION_1_HASH = "c2908fbbda1fd58f"


def test_schema_comes_from_the_core():
    assert FEATURE_SCHEMA.size == _core.FEATURE_COUNT == 52
    assert FEATURE_SCHEMA.name == "sor.features" and FEATURE_SCHEMA.revision == 1
    assert len(set(FEATURE_SCHEMA.names)) == FEATURE_SCHEMA.size
    assert all(f.unit and f.description for f in FEATURE_SCHEMA.features)
    groups = [name.split(".")[0] for name in FEATURE_SCHEMA.names]
    assert groups == sorted(groups, key=["order", "child", "nbbo", "book", "flow", "vol",
                                         "venue"].index)


def test_version_hash_is_stable():
    assert FEATURE_SCHEMA.version_hash == REVISION_1_HASH
    assert len(FEATURE_SCHEMA.version_hash) == 16


@pytest.mark.parametrize("change", ["name", "unit", "order", "revision"])
def test_version_hash_changes_with_the_schema(change):
    features = list(FEATURE_SCHEMA.features)
    revision = FEATURE_SCHEMA.revision
    if change == "name":
        features[7] = dataclasses.replace(features[7], name="child.size_class")
    elif change == "unit":
        features[12] = dataclasses.replace(features[12], unit="cents")
    elif change == "order":
        features[0], features[1] = features[1], features[0]
    else:
        revision += 1
    changed = FeatureSchema(FEATURE_SCHEMA.name, revision, tuple(features))
    assert changed.version_hash != FEATURE_SCHEMA.version_hash
    # a description is documentation, not part of the contract
    reworded = list(FEATURE_SCHEMA.features)
    reworded[3] = dataclasses.replace(reworded[3], description="reworded")
    assert FeatureSchema(FEATURE_SCHEMA.name, FEATURE_SCHEMA.revision,
                         tuple(reworded)).version_hash == FEATURE_SCHEMA.version_hash


def test_index_and_as_dict():
    assert FEATURE_SCHEMA.index("order.side") == 0
    assert FEATURE_SCHEMA.index("venue.midpoint_fee_bps") == FEATURE_SCHEMA.size - 1
    with pytest.raises(UsageError, match="spread_ticks"):
        FEATURE_SCHEMA.index("nbbo.spread")
    row = np.arange(FEATURE_SCHEMA.size, dtype=np.float32)
    assert FEATURE_SCHEMA.as_dict(row)["book.far_depth_5"] == FEATURE_SCHEMA.index("book.far_depth_5")
    with pytest.raises(UsageError):
        FEATURE_SCHEMA.as_dict(row[:3])


def test_docs_show_the_generated_table():
    text = DOC.read_text()
    assert START in text and END in text, f"{DOC} lacks the table markers"
    table = text.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert table == FEATURE_SCHEMA.doc_table(), (
        "docs/features.md is out of date; regenerate the table with "
        "python -c 'from sor.features import FEATURE_SCHEMA; print(FEATURE_SCHEMA.doc_table())'")
    assert FEATURE_SCHEMA.version_hash in text
