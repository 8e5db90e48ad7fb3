"""A protocol is one unit: its definition `protocols/<name>.yaml` (plus, for a format of its own, one parser class).

* A new pair set in a known format is a new YAML file and nothing else: it is listed, parsed, fold-checked,
  offered its rules and evaluated to a record equal to the one the same pairs give through LFW.
* A pair set with a format of its own is the YAML file plus one `@pair_format` class (here registered by the
  test, as a module of `arface_repro.eval.pair_sets.formats` would).
* The definition's new keys are validated strictly: one-line errors naming the file and key.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import yaml

from arface_repro.cli import main
from arface_repro.errors import ConfigError, FormatError
from arface_repro.eval.pair_sets import formats as pair_formats
from arface_repro.eval.protocols import get_protocol, protocol_names
from arface_repro.eval.protocols.spec import load_spec, parse_spec, spec_names
from arface_repro.eval.run import evaluate_store
from arface_repro.io.feature_store import load_feature_store, save_feature_store
from arface_repro.io.pairs import PairList
from arface_repro.io.records import load_record
from arface_repro.paper.resolution import describe_difference
from arface_repro.shared_data import CHECKOUT_PROTOCOLS

N_FOLDS, N = 10, 6          # 10 folds of 6 matched + 6 mismatched pairs
PEOPLE = [f"Person_{i:03d}" for i in range(2 * N_FOLDS * N)]

NEW_PAIR_SET = """\
name: mypairs
title: My pair set, 10-fold verification
kind: pairs
order: 65
format: label-pairs
folds: {text: blocks of 12 lines, balanced: true, size: 12}
counts: {pairs: 120}
layout:
  pairs: my_pairs.txt
rule:
  default: insightface
  alternatives: [lfw-official]
metrics: [Acc, Acc.std, Acc.se, TAR@FAR=1e-3]
reference:
  name: insightface verification.py
  where: recognition/arcface_torch/eval/verification.py (evaluate, calculate_roc)
  status: exact
"""


@pytest.fixture
def protocols(tmp_path, monkeypatch):
    """A copy of the checkout's protocols/ that the test may add definitions to."""
    d = tmp_path / "protocols"
    shutil.copytree(CHECKOUT_PROTOCOLS, d)
    monkeypatch.setenv("ARFACE_PROTOCOLS", str(d))
    return d


def _lfw_pairs_and_store(root):
    """An LFW-format pairs.txt over synthetic people and a feature store of its images (identity + noise)."""
    rng = np.random.default_rng(21)
    lines, pairs = [f"{N_FOLDS}\t{N}"], []
    for f in range(N_FOLDS):
        for k in range(N):
            name = PEOPLE[2 * N * f + k]
            lines.append(f"{name}\t1\t2")
            pairs.append((f"{name}/{name}_0001.jpg", f"{name}/{name}_0002.jpg", 1))
        for k in range(N):
            p, q = PEOPLE[2 * N * f + N + k], PEOPLE[(2 * N * f + N + k + 1) % len(PEOPLE)]
            lines.append(f"{p}\t3\t{q}\t4")
            pairs.append((f"{p}/{p}_0003.jpg", f"{q}/{q}_0004.jpg", 0))
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    paths = sorted({x for a, b, _ in pairs for x in (a, b)})
    centre = {p: rng.normal(size=16) for p in PEOPLE}
    feats = np.stack([centre[p.split("/")[0]] + 0.9 * rng.normal(size=16) for p in paths]).astype(np.float32)
    save_feature_store(root / "store.npz", feats, paths)
    return pairs


def test_a_pair_set_in_a_known_format_needs_only_its_definition(protocols, tmp_path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    pairs = _lfw_pairs_and_store(root)
    # the same pairs as 'path_a path_b label' lines (label -1 = different, as AgeDB-30 writes them)
    (root / "my_pairs.txt").write_text("".join(f"{a} {b} {1 if s else -1}\n" for a, b, s in pairs))
    (protocols / "mypairs.yaml").write_text(NEW_PAIR_SET)

    assert "mypairs" in spec_names() and protocol_names().index("mypairs") == protocol_names().index("agedb30") + 1
    cls = get_protocol("mypairs")
    assert cls.summary == "My pair set, 10-fold verification"
    rule = next(a for a in cls.parser()._actions if a.dest == "rule")
    assert tuple(rule.choices) == ("insightface", "lfw-official")
    assert describe_difference("mypairs", "Acc", 2.5).startswith("3 of 120 pairs")   # counts from the definition

    store = load_feature_store(root / "store.npz")
    mine = evaluate_store("mypairs", store, data_root=str(root))
    lfw = evaluate_store("lfw", store, data_root=str(root))
    assert mine["protocol"] == "mypairs" and mine["metrics"] == lfw["metrics"] and mine["per_fold"] == lfw["per_fold"]
    assert 60 < mine["metrics"]["Acc"] < 100          # the features carry identity: not a coin toss
    # the command line: listed, evaluated from the layout's file under --data-root
    assert main(["evaluate", "--help"]) == 0
    assert re.search(r"^  mypairs\s+My pair set, 10-fold verification$", capsys.readouterr().out, re.M)
    out = tmp_path / "mypairs.json"
    assert main(["evaluate", "--protocol", "mypairs", "--features", str(root / "store.npz"), "--data-root", str(root),
                 "--out", str(out)]) == 0
    assert load_record(out)["metrics"] == mine["metrics"]
    # the fold rule is the definition's: a block with 5 matched and 7 mismatched pairs is refused with its words
    lines = (root / "my_pairs.txt").read_text().splitlines()
    lines[0] = lines[0][:-1] + "-1"
    (root / "my_pairs.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=r"mypairs \(blocks of 12 lines\) needs 10 folds of 12 pairs"):
        evaluate_store("mypairs", store, data_root=str(root))


@pair_formats.pair_format
class _CSVPairs(pair_formats.PairFormat):
    """The one class a format of its own needs: 'fold,path_a,path_b,same' lines (1-based folds)."""

    name = "test-csv"
    help = "CSV 'fold,path_a,path_b,same'"

    @classmethod
    def parse(cls, path, folds, image_dir=""):
        rows = [ln.split(",") for ln in path.read_text().splitlines() if ln.strip()]
        return PairList(np.array([r[1] for r in rows]), np.array([r[2] for r in rows]),
                        np.array([r[3] == "1" for r in rows]), np.array([int(r[0]) - 1 for r in rows]), str(path))


def test_a_pair_set_with_its_own_format_needs_its_definition_and_one_parser_class(protocols, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    pairs = _lfw_pairs_and_store(root)
    (root / "pairs.csv").write_text("".join(f"{i // (2 * N) + 1},{a},{b},{s}\n" for i, (a, b, s) in enumerate(pairs)))
    (protocols / "mycsv.yaml").write_text(NEW_PAIR_SET.replace("mypairs", "mycsv").replace("order: 65", "order: 66")
                                          .replace("format: label-pairs", "format: test-csv")
                                          .replace("my_pairs.txt", "pairs.csv"))
    store = load_feature_store(root / "store.npz")
    rec = evaluate_store("mycsv", store, data_root=str(root))
    assert rec["metrics"] == evaluate_store("lfw", store, data_root=str(root))["metrics"]
    # a format no class provides is an error naming the definition and the key
    (protocols / "mycsv.yaml").write_text((protocols / "mycsv.yaml").read_text().replace("test-csv", "nope"))
    with pytest.raises(ConfigError, match=r"mycsv\.yaml: format: unknown pair-list format 'nope'"):
        evaluate_store("mycsv", store, data_root=str(root))


def test_every_definition_has_a_family_and_every_family_class_a_definition():
    from arface_repro.eval.protocols import _REGISTRY, protocol_kinds

    kinds = set(protocol_kinds())
    for n in spec_names():
        s = load_spec(n)
        assert s.kind in kinds, n
        assert get_protocol(n).kind == s.kind
        if s.kind == "pairs":
            assert s.format in pair_formats.pair_format_names() and s.folds is not None, n
    assert set(_REGISTRY) <= set(spec_names())


@pytest.mark.parametrize("bad,msg", [
    ({"kind": ""}, "kind must be a non-empty string"),
    ({"order": "first"}, "order must be an integer"),
    ({"format": None}, "format must be a non-empty string"),
    ({"kind": "blufr"}, r"format \(the pair-list format\) is required for kind pairs and only there"),
    ({"folds": {"text": "x", "sizes": 3}}, r"folds: unknown key\(s\) \['sizes'\]"),
    ({"folds": {"balanced": True}}, r"folds: missing key\(s\) \['text'\]"),
    ({"folds": {"text": "x", "balanced": "yes"}}, "folds.balanced must be true or false"),
    ({"counts": {"pairs": -1}}, "counts.pairs must be a positive number"),
    ({"counts": {"pair": 6000}}, r"counts: unknown key\(s\) \['pair'\]; allowed: pairs, genuine_pairs"),
    ({"paper": {"root": "lfw_root"}}, r"paper: missing key\(s\) \['from_images'\]"),
    ({"paper": {"root": "lfw_root", "from_images": True, "files": {"pairs": {"key": "k", "required": True}}}},
     "must be an option name"),
    ({"paper": {"root": "lfw_root", "from_images": True, "files": {"--pairs": {"key": "k"}}}},
     r"paper.files.--pairs: missing key\(s\) \['required'\]"),
    ({"paper": {"root": "lfw_root", "from_images": False}}, "paper.manual must say what to run instead"),
])
def test_new_definition_keys_are_validated(bad, msg):
    path = CHECKOUT_PROTOCOLS / "lfw.yaml"
    good = yaml.safe_load(path.read_text())
    with pytest.raises(ConfigError, match=msg) as e:
        parse_spec(path, {**good, **bad})
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)
    parse_spec(path, good)


def test_two_definitions_with_one_order_are_an_error(protocols):
    (protocols / "mypairs.yaml").write_text(NEW_PAIR_SET.replace("order: 65", "order: 60"))
    with pytest.raises(ConfigError, match=r"order 60 is also agedb30.yaml's"):
        spec_names()


def test_a_definition_of_an_unknown_kind_is_an_error_naming_it(protocols, capsys):
    (protocols / "mypairs.yaml").write_text(NEW_PAIR_SET.replace("kind: pairs", "kind: quadruples")
                                            .replace("format: label-pairs\n", ""))
    with pytest.raises(ConfigError, match=r"mypairs\.yaml: kind: unknown protocol kind 'quadruples'; known: .*pairs"):
        get_protocol("mypairs")
    assert main(["evaluate", "--protocol", "mypairs", "--features", "x.npz"]) == 2
    err = capsys.readouterr().err
    assert "unknown protocol kind 'quadruples'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
