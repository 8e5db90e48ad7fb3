"""What a new user reads: `list-models` shows presets with their reported figures, errors name the real cause
(an architecture used as a backend, a .mat or pickled file given as features, a .npz given as a record), and
progress bars stay off when stderr is not a terminal."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require

from arface_repro.cli import main
from arface_repro.models.presets import list_presets, load_preset


def test_list_models_shows_presets_with_reported_figures(capsys):
    assert main(["list-models"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("presets (spec PRESET:FILE")
    for name in list_presets():
        assert f"  {name} " in out
        for r in load_preset(name).reported:
            assert f"reported: {r['benchmark']} {r['metric']} {r['value']}" in out
    assert "architectures (spec torch:ARCH:FILE" in out and "\n  iresnet50\n" in out
    assert main(["list-models", "iresnet*"]) == 0
    out = capsys.readouterr().out
    assert "presets" not in out and "iresnet18" in out and "adaface" not in out


def test_architecture_as_backend_names_the_fix(shared, tmp_path, capsys):
    model = require(shared / "models/mobilefacenet-expo/MobileFaceNet.onnx")
    pairs = require(shared / "data/lfw/pairs.txt")
    root = require(shared / "data/lfw/aligned-112x96")
    assert main(["evaluate", "--protocol", "lfw", "--model", f"mobilefacenet:{model}", "--data-root", str(root),
                 "--pairs", str(pairs), "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "not found" not in err and "'mobilefacenet' is an architecture, not a backend or preset" in err
    assert "torch:mobilefacenet:FILE" in err and "mobilefacenet-expo:FILE" in err
    assert main(["evaluate", "--protocol", "lfw", "--model", f"nosuch:{model}", "--data-root", str(root),
                 "--pairs", str(pairs), "--out", str(tmp_path / "r.json")]) == 2
    assert "'nosuch' is not a backend" in capsys.readouterr().err


def test_mat_and_pickled_feature_files_are_named(shared, tmp_path, capsys):
    mat = require(shared / "data/blufr/blufr_lfw_config.mat")
    pairs = require(shared / "data/lfw/pairs.txt")
    assert main(["evaluate", "--protocol", "lfw", "--features", str(mat), "--pairs", str(pairs),
                 "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "a MATLAB .mat file, not an .npz feature store" in err and "unsafely" not in err
    pickled = tmp_path / "p.npz"
    np.savez(pickled, features=np.zeros((2, 4), np.float32), paths=np.array(["a.jpg", {"x": 1}], dtype=object))
    assert main(["evaluate", "--protocol", "lfw", "--features", str(pickled), "--pairs", str(pairs),
                 "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "it holds object (pickled) arrays, which are never loaded" in err and "unsafely" not in err
    other = tmp_path / "x.npz"
    other.write_bytes(b"\x80\x04not a zip at all")     # neither zip nor .mat: numpy would try a pickle
    assert main(["evaluate", "--protocol", "lfw", "--features", str(other), "--pairs", str(pairs),
                 "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "not a zip archive (numpy would read it as a pickle, which is never loaded)" in err and "unsafely" not in err


def test_npz_given_to_plot_roc_is_named(tmp_path, capsys):
    np.savez(tmp_path / "store.npz", features=np.zeros((2, 4), np.float32), paths=np.array(["a.jpg", "b.jpg"]))
    assert main(["plot-roc", str(tmp_path / "store.npz"), "-o", str(tmp_path / "roc.png")]) == 2
    err = capsys.readouterr().err
    assert "a zip / .npz archive (a feature store or a scores sidecar), not a result record" in err
    assert "UTF-8" not in err


@pytest.mark.usefixtures("one_torch_thread")
def test_progress_is_off_when_stderr_is_not_a_terminal(shared, capsys):
    from arface_repro.eval.embed import extract_features

    root = require(shared / "data/lfw/aligned-112x96")
    model = require(shared / "models/mobilefacenet-expo/MobileFaceNet.onnx")
    files = ["Zico/Zico_0001.jpg", "Zico/Zico_0002.jpg"]
    store = extract_features(f"onnx:{model}", root, files, workers=0, quiet=False)   # not quiet: bars allowed
    assert store.features.shape == (2, 192)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""   # capsys is not a terminal: no bar, no per-item line
