"""The run manifest: config names, coverage of the reproducible rows, the DATA.yaml reader, the plan of
`--run`, and the evaluation adapter's command lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from arface_repro.errors import ConfigError, FormatError
from arface_repro.io.records import build_record, write_record
from arface_repro.paper.manifest import load_claims, load_manifest, record_path
from arface_repro.paper.targets import ROMAN, get_table

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

def test_manifest_references_existing_configs():
    m = load_manifest()
    names = m.config_names()
    missing = sorted(n for n in names if not (CONFIGS / f"{n}.yaml").is_file())
    assert not missing, f"manifest names configs that exist nowhere: {missing}"
    # the fixed names of the issue are all there
    for n in ("mfn_plain", "mfn_random", "mfn_arface_input", "mfn_arface_l3", "mfn_cutout", "mfn_dropblock",
              "r50_plain", "r50_random", "r50_arface_input", "r50_arface_l9", "r50_cutout", "r50_dropblock",
              "r50_arface_l1", "r50_arface_l3", "r50_arface_l5", "r50_arface_l7"):
        assert n in names
    for head in ("softmax", "sphereface", "cosface", "arcface", "amsoftmax"):
        assert {f"r50_{head}_plain", f"r50_{head}_arface"} <= names


def test_synthetic_configs_exist_and_follow_the_paper_reinforce_settings():
    from arface_repro.train.config import load_config

    m = load_manifest()
    names = {c for sec in (m.synthetic, m.lfw_scale) for cells in sec["cells"].values() for c in cells.values()}
    names |= {e["config"] for rows in (m.synthetic.get("extra_rows") or {}).values() for e in rows}
    diagnostic = {e["config"] for rows in (m.synthetic.get("diagnostic_rows") or {}).values() for e in rows}
    assert diagnostic == {"syn_fixed_oracle", "syn_fixed_drop"}
    for n in sorted(diagnostic):
        assert load_config(CONFIGS / f"{n}.yaml")["method"]["kind"] == "fixed", n
    names |= diagnostic
    assert len(m.scale_seeds("synthetic")) >= 5 and m.synthetic["default_blocks"] == ["mfn_subset"]
    names |= {c for sweep in m.synthetic["fig6"].values() for c in sweep.values()}
    for n in sorted(names):
        cfg = load_config(CONFIGS / f"{n}.yaml")
        assert cfg["data"]["kind"] == "synthetic" and cfg["model"]["name"] == "tiny_resnet", n
        meth = cfg["method"]
        if meth["kind"] == "arface" and not n.endswith("_sample"):
            assert (meth["reward"], meth["entropy_weight"], meth["baseline_update"], meth["baseline_decay"]) == ("batch", 1.0e-4, "before", 0.99), n
        if "pickpatch" in n:
            assert meth["kind"] == "random" and meth["num_layers"] == int(n.rsplit("_l", 1)[1]), n
    x = m.scale_cells("synthetic", "X")
    assert load_config(CONFIGS / f"{x['mfn_subset.random_l0']}.yaml")["method"]["num_layers"] == 0


def test_manifest_covers_every_reproducible_row():
    m = load_manifest()
    for tid in ROMAN:
        t = get_table(tid)
        for row in t.rows:
            assert (row.id in m.cells.get(tid, {})) == (row.source == "reproducible"), (tid, row.id)
    # PickPatch = random patches on the input and num_layers feature maps (reading R01), not Random l0
    assert m.run_for("XI", "r50_subset.pickpatch").config == "r50_pickpatch_l9"
    assert m.run_for("X", "r50_subset.random_l0").config == "r50_random"
    assert m.run_for("VI", "arface").id == m.run_for("X", "r50_full.attention_l9").id == "r50full_arface_l9"


def test_claims_refer_to_rows_and_columns():
    c = load_claims()
    assert len(c.comparisons["X"]) == 16 and len(c.comparisons["XI"]) == 14
    hits = c.for_cell("XI", "mfn_subset.arface", "mfn_subset.pickpatch", "lfw")
    assert [(x.id, s) for x, s in hits] == [("T06", 1)]
    hits = c.for_cell("II", "arface", "adaptiveface_r50", "blufr_dir")
    assert [(x.id, s) for x, s in hits] == [("T07", -1)]


# ----------------------------------------------------------------------------- DATA.yaml and --run

def _data(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "DATA.yaml"
    p.write_text(text)
    return p


def test_data_yaml_is_checked_before_any_work(tmp_path):
    from arface_repro.paper.run_missing import load_data_spec

    (tmp_path / "lfw").mkdir()
    (tmp_path / "pairs.txt").write_text("10\t300\n")
    ck = tmp_path / "ck.pt"
    ck.write_bytes(b"x")
    d = load_data_spec(_data(tmp_path, "datasets: {lfw_root: lfw, lfw_pairs: pairs.txt}\n"
                                       "checkpoints: {VI.arface: ck.pt, r50full_pickpatch_l9: 'onnx:ck.pt'}\n"))
    assert d.datasets["lfw_root"] == str(tmp_path / "lfw")
    assert d.checkpoints == {"r50full_arface_l9": f"arface:{ck}", "r50full_pickpatch_l9": f"onnx:{ck}"}
    for text, msg in (("datasets: {lfw_root: nowhere}\n", "does not exist"),
                      ("datasets: {lfw_images: lfw}\n", "not a known evaluation-data key"),
                      ("checkpoints: {VI.resnet50: ck.pt}\n", "reported from the literature"),
                      ("checkpoints: {VI.nothing: ck.pt}\n", "has no row 'nothing'"),
                      ("checkpoints: {VI.arface: ck.pt, I.arface: 'onnx:ck.pt'}\n", "already has checkpoint"),
                      ("training_data: {vggface2: {kind: rec, path: nowhere}}\n", "nowhere.rec does not exist"),
                      ("import: os\n", "unknown key")):
        with pytest.raises((FormatError, ConfigError), match=msg):
            load_data_spec(_data(tmp_path, text))


def test_run_plan_and_adapter_command_lines(tmp_path, monkeypatch):
    from arface_repro.paper import evaluate_adapter, run_missing

    for name in ("lfw", "blufr.mat", "IJBB", "ijbb_meta"):
        (tmp_path / name).mkdir() if "." not in name else (tmp_path / name).write_bytes(b"")
    (tmp_path / "pairs.txt").write_text("")
    ck = tmp_path / "arface.pt"
    ck.write_bytes(b"x")
    data = run_missing.load_data_spec(_data(tmp_path, "datasets: {lfw_root: lfw, lfw_pairs: pairs.txt, blufr_config: blufr.mat, "
                                                      "ijbb_root: IJBB, ijbb_meta: ijbb_meta}\n"
                                                      "checkpoints: {X.r50_full.attention_l9: arface.pt}\n"))
    runs = tmp_path / "runs"
    write_record(build_record("lfw", "insightface", {"Acc": 99.6}), record_path(runs, "r50full_arface_l9", "lfw"))
    plan = run_missing.plan("X", data, runs)
    assert plan.todo == [("r50full_arface_l9", ["blufr"], "checkpoint")]      # lfw is there already
    assert ("mfn_plain", "lfw", "no checkpoints.mfn_plain (or a TABLE.ROW key) and no training_data.vggface2_subset") in plan.impossible
    calls = []
    monkeypatch.setattr(evaluate_adapter, "run_evaluation", lambda proto: calls.append(proto) or ({"protocol": proto.name,
                        "rule": "-", "metrics": {}}, Path(proto.opts.out)))
    logs = []
    run_missing.execute("X", data, runs, log=logs.append, quiet=True)
    # the existing record names no model: kept (not remade on sight), with the reason and how to remake it
    assert f"  kept {record_path(runs, 'r50full_arface_l9', 'lfw')} (model unverified: the record names no model " \
           "identity (model_info)); remove it to evaluate that cell again" in logs
    assert [c.name for c in calls] == ["blufr"]
    o = calls[0].opts
    assert (o.model, o.data_root, o.config, o.cache_dir, o.out, o.quiet) == (
        f"arface:{ck}", str(tmp_path / "lfw"), str(tmp_path / "blufr.mat"),
        str(runs / "features" / "r50full_arface_l9" / "cache"), str(record_path(runs, "r50full_arface_l9", "blufr")), True)
    calls.clear()
    evaluate_adapter.evaluate_model("ijbb", "onnx:m.onnx", data.datasets, tmp_path / "r.json", tmp_path / "w")
    assert calls[0].name == "ijbb" and calls[0].opts.model == "onnx:m.onnx" and calls[0].opts.data_root
    assert calls[0].opts.meta_dir == str(tmp_path / "ijbb_meta")
    with pytest.raises(ConfigError, match="needs datasets.cplfw_root"):
        evaluate_adapter.evaluate_model("cplfw", "onnx:m.onnx", data.datasets, tmp_path / "r.json", tmp_path / "w")


def test_adapter_configures_every_routed_protocol(tmp_path, monkeypatch):
    """Each protocol with a `paper` route is configured through the evaluation API with options its own
    parser knows (from_options refuses any other), from the keys its definition names; a protocol that
    cannot be run from images (Trillion-Pairs) says what to run instead."""
    from arface_repro.eval.protocols.spec import paper_routes
    from arface_repro.paper import evaluate_adapter

    calls = []
    monkeypatch.setattr(evaluate_adapter, "run_evaluation", lambda proto: calls.append(proto) or ({"protocol": proto.name,
                        "rule": "-", "metrics": {}}, Path(proto.opts.out)))
    m = load_manifest()
    datasets = {k: str(tmp_path / k) for k in m.evaluation_keys()}
    routes = paper_routes()
    assert set(m.evaluation_data) == set(routes) and "trillion" in routes and not routes["trillion"].from_images
    for protocol, route in routes.items():
        if not route.from_images:
            with pytest.raises(ConfigError, match="DeepGlint .bin feature matrices"):
                evaluate_adapter.evaluate_model(protocol, "onnx:m.onnx", datasets, tmp_path / "r.json", tmp_path / "w")
            continue
        evaluate_adapter.evaluate_model(protocol, "onnx:m.onnx", datasets, tmp_path / "r.json", tmp_path / "w", quiet=True)
        opts = calls[-1].opts
        assert calls[-1].name == protocol and opts.model == "onnx:m.onnx" and opts.data_root == datasets[route.root]
        for option, key, _ in route.files:
            assert getattr(opts, option.lstrip("-").replace("-", "_")) == datasets[key], (protocol, option)
