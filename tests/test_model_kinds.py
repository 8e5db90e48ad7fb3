"""The registry of model kinds (`arface_repro.models.kinds`), the layers around it, and safe loading in one place."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import arface_repro
from arface_repro.errors import ConfigError
from arface_repro.models import presets
from arface_repro.models.backends import load_model, parse_spec
from arface_repro.models.kind import ModelKind
from arface_repro.models.kinds import KINDS, kind_of_file, single_file_prefixes, syntaxes
from arface_repro.models.onnx_export import export_model_onnx
from arface_repro.paper import run_missing

PACKAGE = Path(arface_repro.__file__).parent


def test_every_kind_module_is_registered_under_its_name():
    modules = sorted(p.stem for p in (PACKAGE / "models" / "kinds").glob("*.py") if p.stem != "__init__")
    assert sorted(KINDS) == modules  # a kind module that KINDS does not list is never reachable
    for name, kind in KINDS.items():
        assert kind.name == name and kind.syntax.startswith(f"{name}:"), kind


def test_the_spec_prefix_selects_the_registry_entry(monkeypatch, tmp_path):
    calls = []

    def load(spec, rest, *, preprocess=None, device=None, trust_torchscript=False):
        calls.append((spec, rest, preprocess, trust_torchscript))
        return "a model"

    monkeypatch.setitem(KINDS, "probe", ModelKind("probe", "probe:PATH", load, suffixes=(".probe",)))
    assert load_model("probe:a:b", preprocess="size=4x4", trust_torchscript=True) == "a model"
    bare = tmp_path / "net.PROBE"
    assert load_model(str(bare)) == "a model"
    assert calls == [("probe:a:b", "a:b", "size=4x4", True), (str(bare), str(bare), None, False)]
    monkeypatch.delitem(KINDS, "probe")
    with pytest.raises(ConfigError, match="'probe' is not a backend nor a preset"):
        load_model("probe:a:b")


def test_lists_of_kinds_are_derived_from_the_registry():
    assert run_missing.SPEC_PREFIXES == single_file_prefixes() == (
        "torch:", "torchscript:", "onnx:", "tflite:", "arface:", "tfgraph:")
    assert presets.BACKENDS == ("torch", "torchscript", "onnx", "tflite", "opencv", "caffe", "tfgraph", "file")
    with pytest.raises(ConfigError) as err:
        parse_spec("nothing:x.bin")
    assert all(k.syntax in str(err.value) for k in KINDS.values()) and syntaxes() in str(err.value)


def test_list_models_shows_the_registered_kinds(capsys):
    from arface_repro.cli import main

    assert main(["list-models", "tf*"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("model kinds (spec NAME:...; arface_repro/models/kinds):\n"
                        "  tflite:PATH  (or a bare *.tflite)\n  tfgraph:MODEL.pb\n"), out


def test_preset_backends_are_registered_kinds(tmp_path, monkeypatch):
    from arface_repro.errors import FormatError

    d = tmp_path / "protocols" / "models"
    d.mkdir(parents=True)
    monkeypatch.setenv("ARFACE_PROTOCOLS", str(tmp_path / "protocols"))
    base = "name: {n}\nbackend: {b}\ninput: {{size: [112, 112]}}\ncrop: {{mode: template}}\n"
    (d / "byfile.yaml").write_text(base.format(n="byfile", b="file"))
    (d / "trained.yaml").write_text(base.format(n="trained", b="arface"))
    with pytest.raises(ConfigError, match=r"preset byfile \(backend file\) needs a file whose suffix names its kind "
                                          r"\(\.onnx, \.tflite\), got 'net\.bin'"):
        load_model("byfile:net.bin")
    with pytest.raises(FormatError, match="backend 'arface'; expected one of torch, torchscript, onnx, tflite, opencv"):
        presets.load_preset("trained")


def test_parse_spec_by_kind():
    assert parse_spec("torch:ir50,flavour=adaface:/m:x.ckpt") == ("torch", "ir50,flavour=adaface", Path("/m:x.ckpt"))
    assert parse_spec("tfgraph:g.pb") == ("tfgraph", None, Path("g.pb"))
    assert parse_spec("dir/M.TFLITE") == ("tflite", None, Path("dir/M.TFLITE"))
    assert kind_of_file("a/B.ONNX").name == "onnx" and kind_of_file("model.pt") is None
    for spec in ("opencv:g.pb", "caffe:n.prototxt:w.caffemodel"):
        with pytest.raises(ConfigError, match="may name several files"):
            parse_spec(spec)
    with pytest.raises(ConfigError, match="no file path after 'onnx:'"):
        parse_spec("onnx:")


def test_a_spec_never_imports_what_it_names(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "evil_kind_21.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for spec in ("evil_kind_21:x.onnx", "evil_kind_21.load:x", "arface_repro.models.kinds.torch:m:x.pt", "kind:x.pt"):
        with pytest.raises(ConfigError, match="is not a backend nor a preset"):
            load_model(spec)
    assert not marker.exists() and "evil_kind_21" not in sys.modules


def test_export_takes_torch_and_arface_specs_only(tmp_path):
    for spec in ("onnx:m.onnx", "m.onnx", "opencv:g.pb", "tfgraph:g.pb"):
        with pytest.raises(ConfigError, match="only torch:ARCH:PATH and arface:CKPT specs can be exported"):
            export_model_onnx(spec, str(tmp_path / "out.onnx"))
    assert not (tmp_path / "out.onnx").exists()


def test_data_yaml_relative_paths_for_every_single_file_kind(tmp_path):
    (tmp_path / "g.pb").write_bytes(b"")
    (tmp_path / "DATA.yaml").write_text("checkpoints: {r50full_pickpatch_l9: 'tfgraph:g.pb'}\n")
    d = run_missing.load_data_spec(tmp_path / "DATA.yaml")
    assert d.checkpoints == {"r50full_pickpatch_l9": f"tfgraph:{tmp_path / 'g.pb'}"}


# ------------------------------------------------------------------ layers


def _imports() -> dict[str, set[str]]:
    """Module -> the package modules it imports, module-level and function-local alike."""
    mods = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p

    def known(name: str) -> str:
        while name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in mods.items():
        out = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                out |= {known(a.name) for a in node.names if a.name.startswith("arface_repro.")}
            elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("arface_repro."):
                out |= {known(f"{node.module}.{a.name}") for a in node.names}
        graph[name] = out - {name}
    return graph


MODEL_LAYERS = ("arface_repro.backbones", "arface_repro.method", "arface_repro.models")


def test_no_import_cycle_through_the_model_layers():
    graph = _imports()
    inside = {m for m in graph if m.startswith(MODEL_LAYERS)}
    state: dict[str, int] = {}

    def visit(m, path):
        state[m] = 1
        for n in sorted(graph[m] & inside):
            assert state.get(n) != 1, f"import cycle: {' -> '.join(path + [m, n])}"
            if n not in state:
                visit(n, path + [m])
        state[m] = 2

    for m in sorted(inside):
        if m not in state:
            visit(m, [])


def test_the_model_layers_import_only_downwards():
    order = ["errors", "utils", "shared_data", "io", "data", "backbones", "method", "models", "eval", "train", "paper",
             "commands", "cli"]
    rank = {name: i for i, name in enumerate(order)}
    bad = []
    for m, outs in _imports().items():
        top = m.split(".")[1] if "." in m else ""
        if top not in ("data", "backbones", "method", "models"):
            continue
        bad += [f"{m} -> {o}" for o in outs if rank.get(o.split(".")[1], -1) > rank[top]]
    assert not bad, bad


def test_torch_load_is_called_in_one_place():
    callers = []
    for p in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                callers.append((p.relative_to(PACKAGE).as_posix(),
                                {k.arg: getattr(k.value, "value", None) for k in node.keywords}.get("weights_only")))
    assert callers == [("utils/safe_load.py", True)]
