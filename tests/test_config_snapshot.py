"""Every config under configs/ resolves to exactly what it resolved to before configs became bases + overrides.

`tests/fixtures/configs_resolved.json` holds each `configs/<name>.yaml` fully resolved by `load_config`
(DEFAULTS <- file, validated), written with sorted keys from the code of commit b7d704f, when every config
was still a whole file. The comparison is on the JSON text, so 30 vs 30.0 or true vs 1 also count as a change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arface_repro.train.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "tests" / "fixtures" / "configs_resolved.json"
EXPECTED = json.loads(SNAPSHOT.read_text())
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def test_the_snapshot_covers_every_config_and_nothing_else():
    assert sorted(p.stem for p in CONFIGS) == sorted(EXPECTED)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_resolves_to_the_snapshot(path):
    got = json.dumps(load_config(path), sort_keys=True, indent=1)
    want = json.dumps(EXPECTED[path.stem], sort_keys=True, indent=1)
    assert got == want
