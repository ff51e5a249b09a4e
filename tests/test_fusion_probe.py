"""scripts/fusion_probe.py: its side-by-side starts are parsed, or refused in one line naming them."""
import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from fusion_probe import parse_start  # noqa: E402


@pytest.mark.parametrize("start, parsed", [
    ("1:random", (1, "random", "cls", "zero")),
    ("7:interaural:mean", (7, "interaural", "mean", "zero")),
    ("7:interaural:prior", (7, "interaural", "cls", "prior")),
    ("7:interaural:prior:mean", (7, "interaural", "mean", "prior")),
])
def test_starts_name_channels_init_pool_and_event_head(start, parsed):
    assert parse_start(start) == parsed


@pytest.mark.parametrize("start", ["7", "x:random", "7:intensity", "7:interaural:max", "7:interaural:cls:mean",
                                   "7:interaural:prior:prior"])
def test_malformed_starts_are_refused_by_name(start):
    with pytest.raises(SystemExit, match=f"got {start!r}"):
        parse_start(start)
