"""One table of bad and hostile inputs, each run through the real CLI entry point `arface_repro.cli.main`.

A case is: a name, a category, a builder that writes its input files under `<tmp>/in` (small, made here) and
returns the argv, the expected exit status and words the message must contain. Every case is then held to the
same rules:

* no traceback, and no exception escapes `main` (an escaping exception is a bug, reported as such);
* the exit status is the expected one (2: a user error, one line `arface CMD: error: ...` or argparse's
  `error:` line; 1: `inspect-rec` found problems; 0: the input was handled correctly);
* no payload ran: the marker file a hostile pickle/YAML/plugin would create does not exist;
* the inputs are unchanged: every file and folder under `<tmp>/in` has the same bytes, nothing added or removed;
* no output a refused command would have written exists (`absent`), and no temp file is left anywhere.

`python tests/test_bad_input_suite.py` prints the table's counts by outcome and category.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pickle
import shutil
import struct
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = "PWNED"  # created by a payload that runs: its presence fails the case


class SystemPayload:
    """Unpickled by anything but a restricted loader, this runs a shell command that touches the marker file."""

    def __init__(self, marker: Path):
        self.cmd = f"touch {marker}"

    def __reduce__(self):
        return (os.system, (self.cmd,))


# ------------------------------------------------------------------------------------------- fixtures (small)

def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def save_store(path: Path, paths, features=None, dim: int = 8, seed: int = 0, flip=None) -> Path:
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((len(paths), dim)).astype(np.float32) if features is None else features
    arrays = {"features": f, "paths": np.asarray(paths)}
    if flip is not None:
        arrays["flip_features"] = flip
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def lfw_files(d: Path, folds: int = 10, n: int = 1, header: str | None = None, name: str = "P") -> tuple[Path, Path]:
    """pairs.txt with `folds` folds of n matched + n mismatched pairs, and a store holding every image."""
    lines, paths = [header if header is not None else f"{folds}\t{n}"], set()
    for f in range(folds):
        for k in range(n):
            p = f"{name}{f}x{k}"
            lines.append(f"{p}\t1\t2")
            paths |= {f"{p}/{p}_0001.jpg", f"{p}/{p}_0002.jpg"}
        for k in range(n):
            a, b = f"{name}{f}x{k}", f"{name}{f}x{(k + 1) % n}y"
            lines.append(f"{a}\t1\t{b}\t1")
            paths |= {f"{a}/{a}_0001.jpg", f"{b}/{b}_0001.jpg"}
    pairs = write(d / "pairs.txt", "\n".join(lines) + "\n")
    return pairs, save_store(d / "lfw.npz", sorted(paths))


def ytf_files(d: Path, splits=range(1, 11), per: int = 1, extra: list[str] = ()) -> tuple[Path, Path]:
    lines, vids = [], set()
    k = 0
    for s in splits:
        for j in range(per):
            k += 1
            lines.append(f"{s}, {k}, A{j}/0, A{j}/1, 1")
            k += 1
            lines.append(f"{s}, {k}, A{j}/0, B{j}/0, 0")
            vids |= {f"A{j}/0", f"A{j}/1", f"B{j}/0"}
    lines += list(extra)
    splits_file = write(d / "splits.txt", "\n".join(lines) + "\n")
    paths = [f"{v}/frame{i}.jpg" for v in sorted(vids) for i in range(2)]
    return splits_file, save_store(d / "ytf.npz", paths)


def blufr_files(d: Path, **override) -> tuple[Path, Path]:
    """A 10-trial BLUFR config over 24 images (8 classes × 3) and a store; `override` replaces variables."""
    import scipy.io

    n_cls, per = 8, 3
    names = [f"C{c}_{i + 1:04d}.jpg" for c in range(n_cls) for i in range(per)]
    labels = np.repeat(np.arange(1, n_cls + 1), per).astype(np.float64)
    idx = np.arange(1, len(names) + 1, dtype=np.float64)

    def cell(arrs):
        out = np.empty((len(arrs), 1), dtype=object)
        for i, a in enumerate(arrs):
            out[i, 0] = np.asarray(a, dtype=np.float64).reshape(-1, 1) if not isinstance(a, np.ndarray) or a.dtype != object else a
        return out

    gal = [i + 1 for i in range(len(names)) if labels[i] <= 6 and i % per == 0]
    prob = [i + 1 for i in range(len(names)) if not (labels[i] <= 6 and i % per == 0)]
    image_list = np.empty((len(names), 1), dtype=object)
    for i, nm in enumerate(names):
        image_list[i, 0] = np.array([nm])
    cfg = {"imageList": image_list, "labels": labels.reshape(-1, 1), "testIndex": cell([idx] * 10),
           "galIndex": cell([gal] * 10), "probIndex": cell([prob] * 10), "trainIndex": cell([idx] * 10)}
    for k, v in override.items():
        cfg[k] = v(cfg) if callable(v) else v
    mat = d / "blufr_lfw_config.mat"
    d.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(mat, cfg)
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((n_cls + 1, 16))
    feats = (centres[labels.astype(int)] + 0.3 * rng.standard_normal((len(names), 16))).astype(np.float32)
    store = save_store(d / "lfw.npz", [f"{n[:2]}/{n}" for n in names], features=feats)
    return mat, store


def ijb_files(d: Path, tid_mid: bytes | None = None, pairs: str | None = None, pts: str | None = None) -> tuple[Path, Path]:
    meta = d / "meta"
    images = [f"{i}.jpg" for i in range(8)]
    write(meta / "ijbc_face_tid_mid.txt", tid_mid if tid_mid is not None else
          "".join(f"{im} {i // 2} {i}\n" for i, im in enumerate(images)))
    write(meta / "ijbc_template_pair_label.txt", pairs if pairs is not None else "0 1 1\n0 2 0\n1 3 0\n2 3 1\n")
    write(meta / "ijbc_name_5pts_score.txt", pts if pts is not None else
          "".join(f"{im} " + " ".join(["50"] * 10) + " 0.9\n" for im in images))
    rng = np.random.default_rng(3)
    return meta, save_store(d / "ijbc.npz", images, features=rng.standard_normal((8, 8)).astype(np.float32))


def record_file(path: Path, curves=None, metrics=None, raw: str | bytes | None = None) -> Path:
    if raw is not None:
        return write(path, raw)
    from arface_repro.io.records import build_record

    rec = build_record("lfw", "insightface", metrics if metrics is not None else {"Acc": 99.0},
                       curves={"roc": {"fpr": [1e-3, 1e-2, 0.1, 1.0], "tpr": [0.5, 0.8, 0.9, 1.0]}}
                       if curves is None else curves, model="toy")
    return write(path, json.dumps(rec))


def jpeg(seed: int = 0, size: int = 16) -> bytes:
    import cv2

    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(".jpg", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return buf.tobytes()


def image_folder(root: Path, identities: int = 2, per: int = 2) -> Path:
    for i in range(identities):
        for k in range(per):
            write(root / f"id{i:02d}" / f"{k:03d}.jpg", jpeg(i * 10 + k))
    return root


def rec_files(prefix: Path, n: int = 4, classes: int = 2) -> Path:
    from arface_repro.data.rec_writer import FaceRecWriter

    prefix.parent.mkdir(parents=True, exist_ok=True)
    with FaceRecWriter(prefix, n, classes) as w:
        for i in range(n):
            w.add(i * classes // n, jpeg(i))
    return prefix


def torch_file(path: Path, obj) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def tiny_state_dict():
    from arface_repro.backbones.registry import create_model

    return create_model("tiny_resnet").state_dict()


def trillion_bin(path: Path, x: np.ndarray) -> Path:
    x = np.asarray(x, "<f4")
    return write(path, struct.pack("<4i", x.shape[0], x.shape[1], x.shape[1] * 4, 5) + x.tobytes())


def protocols_copy(d: Path) -> Path:
    dst = d / "protocols"
    shutil.copytree(ROOT / "protocols", dst)
    return dst


TRAIN_BASE = "name: bad\nmodel: {name: tiny_resnet, kwargs: {channels: [8, 8, 16, 16], fast: true}}\n"
TRAIN_TINY = ["train.steps=2", "train.batch_size=8", "train.log_every=1", "data.synthetic.num_identities=4",
              "data.synthetic.images_per_identity=4", "data.val.num_identities=3", "data.val.images_per_identity=3",
              "data.val.num_pairs=10"]
NOT_UTF8 = b"caf\xe9 \xff\xfe\n"


# ------------------------------------------------------------------------------------------- the table

@dataclass
class Case:
    name: str
    category: str
    build: Callable[[Path], list]          # tmp -> argv (inputs under tmp/in, outputs under tmp/out)
    rc: int
    words: tuple = ()
    absent: tuple = ()                     # paths relative to tmp that must not exist afterwards
    env: dict = field(default_factory=dict)
    check: Callable | None = None          # extra check(tmp, stdout, stderr) for cases that succeed


CASES: list[Case] = []


def case(name, category, rc, words=(), absent=(), env=None, check=None):
    def deco(fn):
        CASES.append(Case(name, category, fn, rc, tuple(words), tuple(absent), env or {}, check))
        return fn
    return deco


EVAL_OUT = ("out/rec.json", "out/rec.scores.npz")


def lfw_eval(t: Path, *extra) -> list:
    pairs, store = lfw_files(t / "in")
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs),
            "--out", str(t / "out/rec.json"), "--quiet", *extra]


# ---- code execution: nothing a file names is imported, nothing untrusted is unpickled

def _train_cfg(t, text=""):
    return write(t / "in/bad.yaml", TRAIN_BASE + text)


@case("resume-planted-pickle", "code-execution", 2, ["never unpickled"], ["out/run/metrics.jsonl"])
def _(t):
    import torch  # noqa: F401

    from arface_repro.models.training_checkpoint import FORMAT

    ck = torch_file(t / "in/ck.pt", {"format": FORMAT, "evil": SystemPayload(t / MARKER)})
    return ["train", str(_train_cfg(t)), *TRAIN_TINY, "--out-dir", str(t / "out/run"), "--resume", str(ck), "--quiet"]


@case("resume-auto-planted-pickle", "code-execution", 2, ["never unpickled"])
def _(t):
    from arface_repro.models.training_checkpoint import FORMAT

    torch_file(t / "in/run/checkpoint_last.pt", {"format": FORMAT, "evil": SystemPayload(t / MARKER)})
    # the run folder is an input here (its planted checkpoint); it must stay as it is
    return ["train", str(_train_cfg(t)), *TRAIN_TINY, "--out-dir", str(t / "in/run"), "--resume", "--quiet"]


@case("config-model-os-system", "code-execution", 2, ["bad.yaml", "unknown model architecture 'os:system'"])
def _(t):
    cfg = write(t / "in/bad.yaml", f"name: bad\nmodel: {{name: 'os:system', kwargs: {{command: 'touch {t / MARKER}'}}}}\n")
    return ["train", str(cfg), *TRAIN_TINY, "--out-dir", str(t / "out/run"), "--quiet"]


@case("override-model-subprocess", "code-execution", 2, ["unknown model architecture 'subprocess:call'"])
def _(t):
    return ["train", str(_train_cfg(t)), *TRAIN_TINY, "model.name=subprocess:call",
            f"model.kwargs.args=[touch, {t / MARKER}]", "--out-dir", str(t / "out/run"), "--quiet"]


@case("config-yaml-python-tag", "code-execution", 2, ["bad.yaml", "not valid YAML"])
def _(t):
    cfg = write(t / "in/bad.yaml", f"name: !!python/object/apply:os.system ['touch {t / MARKER}']\n")
    return ["train", str(cfg), "--out-dir", str(t / "out/run"), "--quiet"]


@case("embed-torch-pickle-payload", "code-execution", 2, ["evil.pt", "never unpickled"], ["out/f.npz"])
def _(t):
    ck = torch_file(t / "in/evil.pt", {"state_dict": SystemPayload(t / MARKER)})
    image_folder(t / "in/img", 1, 1)
    return ["embed", "--model", f"torch:tiny_resnet:{ck}", "--data-root", str(t / "in/img"), "--out", str(t / "out/f.npz"),
            "--workers", "0", "--quiet"]


@case("export-onnx-pickle-payload", "code-execution", 2, ["evil.pth", "never unpickled"], ["out/m.onnx"])
def _(t):
    ck = torch_file(t / "in/evil.pth", SystemPayload(t / MARKER))
    return ["export-onnx", "tiny_resnet", "--checkpoint", str(ck), "-o", str(t / "out/m.onnx")]


@case("arface-spec-pickle-payload", "code-execution", 2, ["ck.pt", "never unpickled"], EVAL_OUT)
def _(t):
    from arface_repro.models.training_checkpoint import FORMAT

    ck = torch_file(t / "in/ck.pt", {"format": FORMAT, "config": SystemPayload(t / MARKER)})
    pairs, _ = lfw_files(t / "in")
    image_folder(t / "in/img", 1, 1)
    return ["evaluate", "--protocol", "lfw", "--model", f"arface:{ck}", "--data-root", str(t / "in/img"), "--pairs",
            str(pairs), "--out", str(t / "out/rec.json"), "--cache-dir", "none", "--workers", "0", "--quiet"]


@case("bin-pickle-os-system", "code-execution", 2, ["evil.bin", "forbidden global"], EVAL_OUT)
def _(t):
    b = write(t / "in/evil.bin", pickle.dumps(([SystemPayload(t / MARKER)], [True])))
    return ["evaluate", "--protocol", "bin", "--pairs", str(b), "--features", str(save_store(t / "in/s.npz", ["a"])),
            "--out", str(t / "out/rec.json")]


@case("store-object-array", "code-execution", 2, ["s.npz", "not a readable .npz"], EVAL_OUT)
def _(t):
    pairs, _ = lfw_files(t / "in")
    with open(t / "in/s.npz", "wb") as fh:
        np.savez(fh, features=np.ones((1, 4), np.float32), paths=np.array([SystemPayload(t / MARKER)], dtype=object))
    return ["evaluate", "--protocol", "lfw", "--features", str(t / "in/s.npz"), "--pairs", str(pairs),
            "--out", str(t / "out/rec.json")]


@case("mtcnn-weights-pickle-payload", "code-execution", 2, ["pnet.pt", "never unpickled"], ["out/crops"])
def _(t):
    for n in ("pnet", "rnet", "onet"):
        torch_file(t / f"in/w/{n}.pt", SystemPayload(t / MARKER))
    image_folder(t / "in/img", 1, 1)
    return ["align", str(t / "in/img"), str(t / "out/crops"), "--weights", str(t / "in/w"), "--quiet"]


@case("preset-yaml-python-tag", "code-execution", 2, ["evil.yaml", "not valid YAML"], ["out/f.npz"])
def _(t):
    write(t / "in/protocols/models/evil.yaml", f"name: !!python/object/apply:os.system ['touch {t / MARKER}']\n")
    write(t / "in/m.onnx", b"x")
    image_folder(t / "in/img", 1, 1)
    os.environ["ARFACE_PROTOCOLS"] = str(t / "in/protocols")
    return ["embed", "--model", f"evil:{t / 'in/m.onnx'}", "--data-root", str(t / "in/img"), "--out", str(t / "out/f.npz")]


@case("protocol-spec-python-tag", "code-execution", 2, ["lfw.yaml", "not valid YAML"], EVAL_OUT)
def _(t):
    d = protocols_copy(t / "in")
    write(d / "lfw.yaml", f"name: !!python/object/apply:os.system ['touch {t / MARKER}']\n")
    os.environ["ARFACE_PROTOCOLS"] = str(d)
    return lfw_eval(t)


@case("plugin-is-only-what-the-user-types", "code-execution", 2, ["--plugin", "nosuchmodule"])
def _(t):
    return ["--plugin", "nosuchmodule", "list-models"]


# ---- wrong results or lost data with exit 0, before

@case("blufr-trials-0", "wrong-result", 2, ["--trials", "1..10"], EVAL_OUT)
def _(t):
    mat, store = blufr_files(t / "in")
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--trials", "0",
            "--out", str(t / "out/rec.json")]


@case("blufr-trials-repeated", "wrong-result", 2, ["trial 1 is listed twice"], EVAL_OUT)
def _(t):
    mat, store = blufr_files(t / "in")
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--trials", "1,1",
            "--out", str(t / "out/rec.json")]


@case("blufr-trials-11", "wrong-result", 2, ["--trials", "1..10", "got 11"], EVAL_OUT)
def _(t):
    mat, store = blufr_files(t / "in")
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--trials", "11",
            "--out", str(t / "out/rec.json")]


@case("blufr-trials-words", "wrong-result", 2, ["--trials", "comma-separated"], EVAL_OUT)
def _(t):
    mat, store = blufr_files(t / "in")
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--trials", "one",
            "--out", str(t / "out/rec.json")]


def _trials_recorded(t, out, err):
    rec = json.loads((t / "out/rec.json").read_text())
    assert rec["per_trial"]["trial"] == [3, 7], rec["per_trial"]


@case("blufr-trials-recorded-1-based", "handled", 0, check=_trials_recorded)
def _(t):
    mat, store = blufr_files(t / "in")
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--trials", "3,7",
            "--trial-workers", "1", "--out", str(t / "out/rec.json"), "--quiet"]


def _rec_with_idx(t, edit) -> Path:
    prefix = rec_files(t / "in/r", n=4, classes=2)
    lines = (t / "in/r.idx").read_text().splitlines()
    (t / "in/r.idx").write_text("\n".join(edit(lines)) + "\n")
    return prefix


@case("inspect-rec-two-keys-one-record", "wrong-result", 1, ["keys 1, 2 all point at offset", "unreachable"])
def _(t):
    def edit(lines):
        k2 = lines[2].split("\t")[0]
        return [lines[0], lines[1], f"{k2}\t{lines[1].split(chr(9))[1]}", *lines[3:]]
    return ["inspect-rec", str(_rec_with_idx(t, edit)), "--quiet"]


@case("inspect-rec-keys-swapped", "wrong-result", 1, ["key 1 reads a record whose header id is 2"])
def _(t):
    def edit(lines):
        a, b = lines[1].split("\t"), lines[2].split("\t")
        return [lines[0], f"{a[0]}\t{b[1]}", f"{b[0]}\t{a[1]}", *lines[3:]]
    return ["inspect-rec", str(_rec_with_idx(t, edit)), "--quiet"]


@case("inspect-rec-header-range-huge", "wrong-result", 1, ["header record 0", "cannot hold"])
def _(t):
    from arface_repro.io.recordio import IndexedRecordWriter, IRHeader, pack

    with IndexedRecordWriter(t / "in/h.idx", t / "in/h.rec") as w:
        w.write_idx(0, pack(IRHeader(2, [3e9, 3e9 + 5], 0, 0), b""))
        w.write_idx(1, pack(IRHeader(0, 0.0, 1, 0), jpeg(1)))
    return ["inspect-rec", str(t / "in/h"), "--quiet"]


@case("inspect-rec-header-range-nan", "wrong-result", 1, ["header record 0", "nan"])
def _(t):
    from arface_repro.io.recordio import IndexedRecordWriter, IRHeader, pack

    with IndexedRecordWriter(t / "in/h.idx", t / "in/h.rec") as w:
        w.write_idx(0, pack(IRHeader(2, [float("nan"), 2.0], 0, 0), b""))
        w.write_idx(1, pack(IRHeader(0, 0.0, 1, 0), jpeg(1)))
    return ["inspect-rec", str(t / "in/h"), "--quiet"]


@case("train-rec-header-range-huge", "wrong-result", 2, ["h.idx", "keys 1..1999999999 exist", "missing key 2"],
      ["out/run/checkpoint_last.pt"])
def _(t):
    from arface_repro.io.recordio import IndexedRecordWriter, IRHeader, pack

    with IndexedRecordWriter(t / "in/h.idx", t / "in/h.rec") as w:
        w.write_idx(0, pack(IRHeader(2, [2e9, 2e9 + 1], 0, 0), b""))
        w.write_idx(1, pack(IRHeader(0, 0.0, 1, 0), jpeg(1)))
    return ["train", str(_train_cfg(t)), "train.steps=1", "train.batch_size=2", "data.kind=rec",
            f"data.path={t / 'in/h'}", "--out-dir", str(t / "out/run"), "--quiet"]


@case("train-rec-label-huge", "wrong-result", 2, ["n.rec", "class id", "only 2 images"], ["out/run/checkpoint_last.pt"])
def _(t):
    from arface_repro.io.recordio import IndexedRecordWriter, IRHeader, pack

    with IndexedRecordWriter(t / "in/n.idx", t / "in/n.rec") as w:
        w.write_idx(1, pack(IRHeader(0, 0.0, 1, 0), jpeg(1)))
        w.write_idx(2, pack(IRHeader(0, 9.0e8, 2, 0), jpeg(2)))
    return ["train", str(_train_cfg(t)), "train.steps=1", "train.batch_size=2", "data.kind=rec",
            f"data.path={t / 'in/n'}", "--out-dir", str(t / "out/run"), "--quiet"]


def _pyfunc_graph_embed(t, kind: str) -> list[str]:
    """A TF graph whose node 'evil' is a PyFunc (would run `touch MARKER`), embedded through the `kind:` backend."""
    from arface_repro.models.proto_schemas import tensorflow

    g = tensorflow()["GraphDef"]()
    node = g.node.add(name="input", op="Placeholder")
    node.attr["dtype"].type = 1
    for d in (1, 8, 8, 3):
        node.attr["shape"].shape.dim.add().size = d
    evil = g.node.add(name="evil", op="PyFunc", input=["input"])
    evil.attr["token"].s = f"touch {t / MARKER}".encode()
    write(t / "in/py.pb", g.SerializeToString())
    image_folder(t / "in/img", 1, 1)
    return ["embed", "--model", f"{kind}:{t / 'in/py.pb'}", "--data-root", str(t / "in/img"), "--out",
            str(t / "out/f.npz"), "--workers", "0", "--quiet"]


@case("tensorflow-pyfunc-node", "code-execution", 2, ["py.pb", "PyFunc"], ["out/f.npz"])
def _(t):
    return _pyfunc_graph_embed(t, "opencv")


@case("tfgraph-pyfunc-node", "code-execution", 2, ["py.pb", "'evil'", "op type 'PyFunc' is not supported"],
      ["out/f.npz"])
def _(t):
    return _pyfunc_graph_embed(t, "tfgraph")


@case("tfgraph-huge-constant", "corrupt-file", 2, ["big.pb", "'huge'", "is over"], ["out/f.npz"])
def _(t):
    from arface_repro.models.proto_schemas import tensorflow

    g = tensorflow()["GraphDef"]()
    node = g.node.add(name="input", op="Placeholder")
    node.attr["dtype"].type = 1
    huge = g.node.add(name="huge", op="Const")  # 2^30 float32 values declared (4 GiB), one given
    huge.attr["value"].tensor.dtype = 1
    for d in (1 << 15, 1 << 15):
        huge.attr["value"].tensor.tensor_shape.dim.add().size = d
    huge.attr["value"].tensor.float_val.append(1.0)
    g.node.add(name="out", op="AddV2", input=["input", "huge"])
    write(t / "in/big.pb", g.SerializeToString())
    image_folder(t / "in/img", 1, 1)
    return ["embed", "--model", f"tfgraph:{t / 'in/big.pb'}", "--preprocess", "size=8x8", "--data-root",
            str(t / "in/img"), "--out", str(t / "out/f.npz"), "--workers", "0", "--quiet"]


@case("caffe-python-layer", "code-execution", 2, ["py.prototxt", "python_param"], ["out/f.npz"])
def _(t):
    write(t / "in/py.prototxt", 'name: "n"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n'
          'layer { name: "p" type: "Python" bottom: "data" top: "p" python_param { module: "os" layer: "system" '
          f'param_str: "touch {t / MARKER}" }} }}\n')
    write(t / "in/w.caffemodel", b"")
    image_folder(t / "in/img", 1, 1)
    return ["embed", "--model", f"caffe:{t / 'in/py.prototxt'}:{t / 'in/w.caffemodel'}", "--data-root",
            str(t / "in/img"), "--out", str(t / "out/f.npz"), "--workers", "0", "--quiet"]


@case("pack-rec-images-in-subfolder", "wrong-result", 2, ["more", "subfolder of identity 'id00'"], ["out/o.rec", "out/o.idx"])
def _(t):
    image_folder(t / "in/f")
    write(t / "in/f/id00/more/x.jpg", jpeg(5))  # once silently left out of the .rec
    return ["pack-rec", str(t / "in/f"), str(t / "out/o"), "--quiet"]


@case("mtcnn-weights-text", "corrupt-file", 2, ["pnet.pt", "MTCNN"], ["out/crops"])
def _(t):
    for n in ("pnet", "rnet", "onet"):
        write(t / f"in/w/{n}.pt", "not weights\n")
    image_folder(t / "in/img", 1, 1)
    return ["align", str(t / "in/img"), str(t / "out/crops"), "--weights", str(t / "in/w"), "--quiet"]


@case("checkpoint-text-no-unsafe-advice", "corrupt-file", 2, ["ck.pt", "not a readable arface training checkpoint"],
      ["out/run/checkpoint_last.pt"])
def _(t):
    ck = write(t / "in/ck.pt", "just text\n")
    return ["train", str(_train_cfg(t)), *TRAIN_TINY, "--out-dir", str(t / "out/run"), "--resume", str(ck), "--quiet"]


# ---- outputs over inputs

@case("align-dir-over-itself", "output-over-input", 2, ["DST_DIR", "is the input"])
def _(t):
    image_folder(t / "in/img", 1, 2)
    return ["align", str(t / "in/img"), str(t / "in/img"), "--weights", str(t / "in/img"), "--quiet"]


@case("align-dst-inside-src", "output-over-input", 2, ["DST_DIR", "inside the input folder"])
def _(t):
    image_folder(t / "in/img", 1, 2)
    return ["align", str(t / "in/img"), str(t / "in/img/crops"), "--weights", str(t / "in/img"), "--quiet"]


@case("align-box-dst-inside-src", "output-over-input", 2, ["DST_DIR", "inside the input folder"])
def _(t):
    image_folder(t / "in/img", 1, 2)
    return ["align", str(t / "in/img"), str(t / "in/img/box"), "--mode", "box", "--weights", str(t / "in/img"), "--quiet"]


@case("align-src-inside-dst", "output-over-input", 2, ["DST_DIR", "lies inside this output folder"])
def _(t):
    image_folder(t / "in/data/raw", 1, 2)
    return ["align", str(t / "in/data/raw"), str(t / "in/data"), "--weights", str(t / "in/data/raw"), "--quiet"]


@case("evaluate-out-over-features", "output-over-input", 2, ["--out", "lfw.npz", "is the input"])
def _(t):
    pairs, store = lfw_files(t / "in")
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--out", str(store)]


@case("evaluate-out-over-pairs", "output-over-input", 2, ["--out", "pairs.txt", "is the input"])
def _(t):
    pairs, store = lfw_files(t / "in")
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--out", str(pairs)]


@case("evaluate-sidecar-over-features", "output-over-input", 2, ["scores sidecar", "is the input"])
def _(t):
    pairs, store = lfw_files(t / "in")
    store.rename(t / "in/r.scores.npz")
    return ["evaluate", "--protocol", "lfw", "--features", str(t / "in/r.scores.npz"), "--pairs", str(pairs),
            "--out", str(t / "in/r.json")]


@case("evaluate-out-over-layout-file", "output-over-input", 2, ["--out", "is the input"])
def _(t):
    meta, store = ijb_files(t / "in")
    return ["evaluate", "--protocol", "ijbc", "--features", str(store), "--data-root", str(t / "in"),
            "--out", str(meta / "ijbc_template_pair_label.txt")]


@case("evaluate-out-equals-save-features", "output-over-input", 2, ["--save-features", "also the output of --out"])
def _(t):
    pairs, _ = lfw_files(t / "in")
    write(t / "in/m.onnx", b"x")
    return ["evaluate", "--protocol", "lfw", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in"),
            "--pairs", str(pairs), "--out", str(t / "out/x.npz"), "--save-features", str(t / "out/x.npz")]


@case("evaluate-save-features-over-model", "output-over-input", 2, ["--save-features", "is the input"])
def _(t):
    pairs, _ = lfw_files(t / "in")
    save_store(t / "in/m.npz", ["a"])
    return ["evaluate", "--protocol", "lfw", "--model", f"onnx:{t / 'in/m.npz'}", "--data-root", str(t / "in"),
            "--pairs", str(pairs), "--out", str(t / "out/r.json"), "--save-features", str(t / "in/m.npz")]


@case("embed-out-over-list", "output-over-input", 2, ["--out", "is the input"])
def _(t):
    write(t / "in/l.npz", "a.jpg\n")
    write(t / "in/m.onnx", b"x")
    return ["embed", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in"), "--list", str(t / "in/l.npz"),
            "--out", str(t / "in/l.npz")]


@case("export-onnx-over-its-model", "output-over-input", 2, ["-o", "is the input"])
def _(t):
    torch_file(t / "in/m.onnx", tiny_state_dict())
    return ["export-onnx", "--model", f"torch:tiny_resnet:{t / 'in/m.onnx'}", "-o", str(t / "in/m.onnx")]


@case("plot-roc-over-a-record", "output-over-input", 2, ["-o", "is the input"])
def _(t):
    r = record_file(t / "in/r.png")
    return ["plot-roc", str(r), "-o", str(r)]


@case("compare-plot-over-a-record", "output-over-input", 2, ["--plot", "is the input"])
def _(t):
    a, b = record_file(t / "in/a.png"), record_file(t / "in/b.json")
    return ["compare", str(a), str(b), "--plot", str(a)]


def _record_with(path: Path, **changes) -> Path:
    rec = json.loads(record_file(path).read_text())
    rec.update(changes)
    return write(path, json.dumps(rec))


@case("compare-lfw-against-blufr", "wrong-result", 2, ["b.json", "compare needs records of one protocol"])
def _(t):
    return ["compare", str(record_file(t / "in/a.json")), str(_record_with(t / "in/b.json", protocol="blufr"))]


@case("compare-other-pair-list", "wrong-result", 2, ["different pairs files", "not the same pairs"])
def _(t):
    a = _record_with(t / "in/a.json", inputs={"pairs": {"path": "p.txt", "sha256": "1" * 64}})
    b = _record_with(t / "in/b.json", inputs={"pairs": {"path": "p.txt", "sha256": "2" * 64}})
    return ["compare", str(a), str(b)]


@case("compare-npz-given-as-record", "corrupt-file", 2, ["s.npz", "not a result record"])
def _(t):
    np.savez(t / "in/s.npz", features=np.zeros((2, 3), np.float32), paths=np.array(["a.jpg", "b.jpg"]))
    return ["compare", str(record_file(t / "in/a.json")), str(t / "in/s.npz")]


@case("pack-rec-inside-folder", "output-over-input", 2, ["OUT_PREFIX", "inside the input folder"])
def _(t):
    image_folder(t / "in/f")
    return ["pack-rec", str(t / "in/f"), str(t / "in/f/train"), "--quiet"]


@case("pack-rec-over-landmarks", "output-over-input", 2, ["OUT_PREFIX", "lm.idx", "is the input"])
def _(t):
    image_folder(t / "in/f")
    write(t / "in/lm.idx", "# landmarks\n")
    return ["pack-rec", str(t / "in/f"), str(t / "in/lm"), "--landmarks", str(t / "in/lm.idx"), "--quiet"]


@case("make-subset-over-names", "output-over-input", 2, ["OUT_PREFIX", "is the input"])
def _(t):
    image_folder(t / "in/f")
    write(t / "in/o.report.txt", "Nobody\t1\n")
    return ["make-subset", str(t / "in/f"), str(t / "in/o"), "--lfw-names", str(t / "in/o.report.txt"), "--quiet"]


@case("train-out-dir-over-config", "output-over-input", 2, ["out_dir", "is a file"])
def _(t):
    cfg = _train_cfg(t)
    return ["train", str(cfg), *TRAIN_TINY, "--out-dir", str(cfg), "--quiet"]


# ---- fold structure

@case("lfw-header-0-300", "fold-structure", 2, ["pairs.txt", "10 folds", "no pairs"], EVAL_OUT)
def _(t):
    pairs, store = lfw_files(t / "in", folds=0, n=300, header="0\t300")
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


@case("lfw-single-fold", "fold-structure", 2, ["pairs.txt", "needs 10 folds", "found 1 fold (numbered 1) of 6 pairs (3 matched)"], EVAL_OUT)
def _(t):
    pairs, store = lfw_files(t / "in", folds=1, n=3, header="3")
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


@case("lfw-two-folds", "fold-structure", 2, ["needs 10 folds", "found 2 folds (numbered 1, 2) of 4 pairs (2 matched) each"], EVAL_OUT)
def _(t):
    pairs, store = lfw_files(t / "in", folds=2, n=2)
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


@case("ytf-split-11", "fold-structure", 2, ["splits.txt", "ytf", "found 11 folds (numbered 1..11)"], EVAL_OUT)
def _(t):
    splits, store = ytf_files(t / "in", extra=["11, 99, A0/0, A0/1, 1", "11, 100, A0/0, B0/0, 0"])
    return ["evaluate", "--protocol", "ytf", "--features", str(store), "--pairs", str(splits), "--out", str(t / "out/rec.json")]


@case("ytf-one-split", "fold-structure", 2, ["needs 10 folds", "found 1 fold (numbered 1)"], EVAL_OUT)
def _(t):
    splits, store = ytf_files(t / "in", splits=[1], per=3)
    return ["evaluate", "--protocol", "ytf", "--features", str(store), "--pairs", str(splits), "--out", str(t / "out/rec.json")]


@case("ytf-unbalanced-split", "fold-structure", 2, ["half matched", "4: 3 (2 matched)"], EVAL_OUT)
def _(t):
    splits, store = ytf_files(t / "in", extra=["4, 99, A0/0, A0/1, 1"])
    return ["evaluate", "--protocol", "ytf", "--features", str(store), "--pairs", str(splits), "--out", str(t / "out/rec.json")]


@case("calfw-no-pairs", "fold-structure", 2, ["pairs_CALFW.txt"], EVAL_OUT)
def _(t):
    p = write(t / "in/pairs_CALFW.txt", "\n")
    return ["evaluate", "--protocol", "calfw", "--features", str(save_store(t / "in/s.npz", ["a"])), "--pairs", str(p),
            "--out", str(t / "out/rec.json")]


def _agedb(t, n, label=lambda i: 1 if (i % 600) < 300 else -1):
    lines = [f"a{i}.jpg b{i}.jpg {label(i)}" for i in range(n)]
    p = write(t / "in/agedb.txt", "\n".join(lines) + "\n")
    s = save_store(t / "in/s.npz", sorted({f"a{i}.jpg" for i in range(n)} | {f"b{i}.jpg" for i in range(n)}))
    return ["evaluate", "--protocol", "agedb30", "--features", str(s), "--pairs", str(p), "--out", str(t / "out/rec.json")]


@case("agedb-two-folds", "fold-structure", 2, ["agedb30", "10 folds of 600 pairs", "found 2 folds"], EVAL_OUT)
def _(t):
    return _agedb(t, 1200)


@case("agedb-unbalanced-folds", "fold-structure", 2, ["agedb30", "half matched", "600 pairs (400 matched)"], EVAL_OUT)
def _(t):
    return _agedb(t, 6000, lambda i: 1 if (i % 600) < 400 else -1)


def _cfp(t, same_counts):
    proto = t / "in/cfp/Protocol"
    write(proto / "Pair_list_F.txt", "\n".join(f"{i} ../Data/{i}/f.jpg" for i in range(1, 41)) + "\n")
    write(proto / "Pair_list_P.txt", "\n".join(f"{i} ../Data/{i}/p.jpg" for i in range(1, 41)) + "\n")
    for f in range(10):
        k = same_counts[f]
        d = proto / "Split" / "FP" / f"{f + 1:02d}"
        write(d / "same.txt", "".join(f"{j + 1},{j + 1}\n" for j in range(k)))
        write(d / "diff.txt", "".join(f"{j + 1},{j + 2}\n" for j in range(k)))
    paths = [f"Data/{i}/f.jpg" for i in range(1, 41)] + [f"Data/{i}/p.jpg" for i in range(1, 41)]
    return ["evaluate", "--protocol", "cfp-fp", "--features", str(save_store(t / "in/s.npz", paths)),
            "--pairs", str(t / "in/cfp"), "--out", str(t / "out/rec.json")]


@case("cfp-folds-of-different-sizes", "fold-structure", 2, ["cfp-fp", "equal size", "found 10 folds (numbered 1..10), pairs per fold 1: 4 (2 matched)"], EVAL_OUT)
def _(t):
    return _cfp(t, [2] * 9 + [3])


@case("bin-fewer-pairs-than-folds", "fold-structure", 2, ["s.bin", "10 folds", "found 5 folds (numbered 1..5)"], EVAL_OUT)
def _(t):
    b = write(t / "in/s.bin", pickle.dumps(([jpeg(i) for i in range(10)], [True, False] * 2 + [True])))
    store = save_store(t / "in/b.npz", [f"bin/{i:06d}" for i in range(10)])
    return ["evaluate", "--protocol", "bin", "--features", str(store), "--pairs", str(b), "--out", str(t / "out/rec.json")]


@case("ytf-video-dotdot", "path-traversal", 2, ["splits.txt:1", "'../x'", "Person/videoIdx"], EVAL_OUT)
def _(t):
    splits, store = ytf_files(t / "in")
    splits.write_text("1, 1, ../x, A0/1, 1\n" + splits.read_text())
    return ["evaluate", "--protocol", "ytf", "--features", str(store), "--pairs", str(splits), "--out", str(t / "out/rec.json")]


@case("export-onnx-arch-kwarg-text", "corrupt-file", 2, ["tiny_resnet", "embedding_size", "cannot be built"], ["out/m.onnx"])
def _(t):
    torch_file(t / "in/m.pth", tiny_state_dict())
    return ["export-onnx", "tiny_resnet,embedding_size=abc", "--checkpoint", str(t / "in/m.pth"), "-o", str(t / "out/m.onnx")]


@case("export-onnx-arch-kwarg-negative", "bad-number", 2, ["tiny_resnet", "embedding_size", "cannot be built"], ["out/m.onnx"])
def _(t):
    torch_file(t / "in/m.pth", tiny_state_dict())
    return ["export-onnx", "tiny_resnet,embedding_size=-5", "--checkpoint", str(t / "in/m.pth"), "-o", str(t / "out/m.onnx")]


@case("trillion-no-distractors", "wrong-result", 2, ["distractor matrix has no rows"], EVAL_OUT)
def _(t):
    rng = np.random.default_rng(0)
    probes = trillion_bin(t / "in/p.bin", rng.standard_normal((4, 8)))
    dis = trillion_bin(t / "in/d.bin", np.zeros((0, 8)))
    write(t / "in/labels.txt", "a\na\nb\nb\n")
    return ["evaluate", "--protocol", "trillion", "--features", str(probes), "--probe-labels", str(t / "in/labels.txt"),
            "--distractor-features", str(dis), "--out", str(t / "out/rec.json")]


# ---- paths leaving the data root

@case("embed-list-dotdot", "path-traversal", 2, ["l.txt:2", "'..'"], ["out/f.npz"])
def _(t):
    image_folder(t / "in/root", 1, 1)
    write(t / "secret.jpg", jpeg(9))
    write(t / "in/l.txt", "id00/000.jpg\n../../secret.jpg\n")
    write(t / "in/m.onnx", b"x")
    return ["embed", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in/root"), "--list", str(t / "in/l.txt"),
            "--out", str(t / "out/f.npz")]


@case("embed-list-absolute", "path-traversal", 2, ["l.txt:1", "absolute"], ["out/f.npz"])
def _(t):
    write(t / "in/l.txt", "/etc/passwd\n")
    write(t / "in/m.onnx", b"x")
    return ["embed", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in"), "--list", str(t / "in/l.txt"),
            "--out", str(t / "out/f.npz")]


@case("pair-list-dotdot-with-model", "path-traversal", 2, ["pairs.txt", "'..'", "inside the data root"], EVAL_OUT)
def _(t):
    pairs, _ = lfw_files(t / "in", name="../../P")
    write(t / "in/m.onnx", b"x")
    return ["evaluate", "--protocol", "lfw", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in/img"),
            "--pairs", str(pairs), "--out", str(t / "out/rec.json"), "--cache-dir", "none"]


@case("store-absolute-path-after-row-1000", "path-traversal", 2, ["s.npz", "/abs/x1500.jpg", "row 1500", "absolute"], EVAL_OUT)
def _(t):
    pairs, _ = lfw_files(t / "in")
    paths = [f"p/x{i}.jpg" for i in range(2000)]
    paths[1500] = "/abs/x1500.jpg"
    return ["evaluate", "--protocol", "lfw", "--features", str(save_store(t / "in/s.npz", paths, dim=4)),
            "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


# ---- bad output locations, found before any work

@case("out-parent-is-a-file", "bad-output-location", 2, ["--out", "is a file, so the folder"])
def _(t):
    write(t / "out/file", "x")
    return lfw_eval(t)[:-3] + ["--out", str(t / "out/file/rec.json")]


@case("out-is-a-folder", "bad-output-location", 2, ["--out", "is a folder"])
def _(t):
    (t / "out/dir").mkdir()
    return lfw_eval(t)[:-3] + ["--out", str(t / "out/dir")]


@case("out-not-writable", "bad-output-location", 2, ["--out", "cannot write in"])
def _(t):
    if os.geteuid() == 0:  # root writes anywhere: a read-only file system is the case then
        return lfw_eval(t)[:-3] + ["--out", "/proc/arface-rec.json"]
    (t / "out/ro").mkdir(mode=0o500)
    return lfw_eval(t)[:-3] + ["--out", str(t / "out/ro/rec.json")]


@case("runs-dir-is-a-file", "bad-output-location", 2, ["--runs-dir", "is a file, not a folder"])
def _(t):
    pairs, store = lfw_files(t / "in")
    write(t / "out/runs", "x")
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--runs-dir", str(t / "out/runs")]


@case("blufr-out-checked-before-trials", "bad-output-location", 2, ["--out", "is a file, so the folder"])
def _(t):
    mat, store = blufr_files(t / "in")
    write(t / "out/f", "x")
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--out", str(t / "out/f/r.json")]


@case("cache-dir-is-a-file", "bad-output-location", 2, ["--cache-dir", "is a file, not a folder"])
def _(t):
    pairs, _ = lfw_files(t / "in")
    write(t / "in/m.onnx", b"x")
    write(t / "out/cache", "x")
    return ["evaluate", "--protocol", "lfw", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in"),
            "--pairs", str(pairs), "--cache-dir", str(t / "out/cache"), "--out", str(t / "out/r.json")]


@case("save-features-without-model", "bad-output-location", 2, ["--save-features", "--model"])
def _(t):
    return lfw_eval(t, "--save-features", str(t / "out/s.npz"))


@case("embed-out-not-npz", "bad-output-location", 2, ["--out", ".npz"])
def _(t):
    write(t / "in/m.onnx", b"x")
    return ["embed", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in"), "--out", str(t / "out/features")]


@case("embed-out-is-a-folder", "bad-output-location", 2, ["--out", "is a folder"])
def _(t):
    write(t / "in/m.onnx", b"x")
    (t / "out/f.npz").mkdir()
    return ["embed", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in"), "--out", str(t / "out/f.npz")]


@case("embed-cache-dir-is-a-file", "bad-output-location", 2, ["--cache-dir", "is a file"])
def _(t):
    write(t / "in/m.onnx", b"x")
    write(t / "out/c", "x")
    return ["embed", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in"), "--out", str(t / "out/f.npz"),
            "--cache-dir", str(t / "out/c")]


@case("plot-roc-o-parent-is-a-file", "bad-output-location", 2, ["-o", "is a file, so the folder"])
def _(t):
    write(t / "out/x", "x")
    return ["plot-roc", str(record_file(t / "in/r.json")), "-o", str(t / "out/x/fig.png")]


@case("export-onnx-o-is-a-folder", "bad-output-location", 2, ["-o", "is a folder"])
def _(t):
    torch_file(t / "in/m.pth", tiny_state_dict())
    (t / "out/m.onnx").mkdir()
    return ["export-onnx", "tiny_resnet", "--checkpoint", str(t / "in/m.pth"), "-o", str(t / "out/m.onnx")]


@case("pack-rec-out-parent-is-a-file", "bad-output-location", 2, ["OUT_PREFIX", "is a file, so the folder"])
def _(t):
    image_folder(t / "in/f")
    write(t / "out/x", "x")
    return ["pack-rec", str(t / "in/f"), str(t / "out/x/train"), "--quiet"]


@case("align-dst-is-a-file", "bad-output-location", 2, ["DST_DIR", "is a file, not a folder"])
def _(t):
    image_folder(t / "in/img", 1, 1)
    write(t / "out/crops", "x")
    return ["align", str(t / "in/img"), str(t / "out/crops"), "--weights", str(t / "in/img"), "--quiet"]


@case("train-out-dir-parent-is-a-file", "bad-output-location", 2, ["out_dir", "is a file, so the folder"])
def _(t):
    write(t / "out/x", "x")
    return ["train", str(_train_cfg(t)), *TRAIN_TINY, "--out-dir", str(t / "out/x/run"), "--quiet"]


# ---- corrupt, truncated or empty files of every format read

@case("npz-truncated", "corrupt-file", 2, ["lfw.npz", "not a readable .npz", "BadZipFile"], EVAL_OUT)
def _(t):
    pairs, store = lfw_files(t / "in")
    data = store.read_bytes()
    store.write_bytes(data[: len(data) // 2])
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


@case("npz-empty-file", "corrupt-file", 2, ["e.npz", "not a readable .npz"], EVAL_OUT)
def _(t):
    pairs, _ = lfw_files(t / "in")
    return ["evaluate", "--protocol", "lfw", "--features", str(write(t / "in/e.npz", b"")), "--pairs", str(pairs),
            "--out", str(t / "out/rec.json")]


@case("npz-without-paths", "corrupt-file", 2, ["needs arrays 'features' and 'paths'"], EVAL_OUT)
def _(t):
    pairs, _ = lfw_files(t / "in")
    with open(t / "in/s.npz", "wb") as fh:
        np.savez(fh, features=np.ones((2, 4), np.float32))
    return ["evaluate", "--protocol", "lfw", "--features", str(t / "in/s.npz"), "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


@case("npz-text-features", "corrupt-file", 2, ["'features' must be floating point"], EVAL_OUT)
def _(t):
    pairs, _ = lfw_files(t / "in")
    s = save_store(t / "in/s.npz", ["a", "b"], features=np.array([["x", "y"], ["z", "w"]]))
    return ["evaluate", "--protocol", "lfw", "--features", str(s), "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


@case("npz-nan-row", "bad-number", 2, ["non-finite", "P0x0/P0x0_0001.jpg"], EVAL_OUT)
def _(t):
    pairs, store = lfw_files(t / "in")
    with np.load(store) as z:
        f, p = z["features"].copy(), z["paths"]
    f[list(p).index("P0x0/P0x0_0001.jpg"), 2] = np.nan
    save_store(store, p, features=f)
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


@case("npz-inf-flip-row", "bad-number", 2, ["non-finite", "flip_features"], EVAL_OUT)
def _(t):
    pairs, store = lfw_files(t / "in")
    with np.load(store) as z:
        f, p = z["features"].copy(), z["paths"]
    flip = f.copy()
    flip[0, 0] = np.inf
    save_store(store, p, features=f, flip=flip)
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


@case("npz-huge-values", "bad-number", 2, ["too large for float32"], EVAL_OUT)
def _(t):
    pairs, store = lfw_files(t / "in")
    with np.load(store) as z:
        f, p = z["features"].copy(), z["paths"]
    f[3] *= np.float32(1e30)
    save_store(store, p, features=f)
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


@case("npz-zero-row", "bad-number", 2, ["all-zero"], EVAL_OUT)
def _(t):
    pairs, store = lfw_files(t / "in")
    with np.load(store) as z:
        f, p = z["features"].copy(), z["paths"]
    f[1] = 0
    save_store(store, p, features=f)
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


@case("npz-duplicate-path", "corrupt-file", 2, ["duplicate path", "a/x.jpg"], EVAL_OUT)
def _(t):
    pairs, _ = lfw_files(t / "in")
    s = save_store(t / "in/s.npz", ["a/x.jpg", "./a/x.jpg"])
    return ["evaluate", "--protocol", "lfw", "--features", str(s), "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


@case("lfw-pairs-not-utf8", "text-encoding", 2, ["pairs.txt:2", "not UTF-8"], EVAL_OUT)
def _(t):
    pairs, store = lfw_files(t / "in")
    pairs.write_bytes(b"10\t1\n\xff\xfe\n")
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


@case("list-not-utf8", "text-encoding", 2, ["l.txt:1", "not UTF-8"], ["out/f.npz"])
def _(t):
    write(t / "in/l.txt", NOT_UTF8)
    write(t / "in/m.onnx", b"x")
    return ["embed", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in"), "--list", str(t / "in/l.txt"),
            "--out", str(t / "out/f.npz")]


@case("ytf-splits-not-utf8", "text-encoding", 2, ["splits.txt:3", "not UTF-8"], EVAL_OUT)
def _(t):
    splits, store = ytf_files(t / "in")
    splits.write_bytes(splits.read_bytes().split(b"\n", 2)[0] + b"\n" + b"1, 2, A/0, B/0, 0\n" + NOT_UTF8)
    return ["evaluate", "--protocol", "ytf", "--features", str(store), "--pairs", str(splits), "--out", str(t / "out/rec.json")]


@case("ijb-meta-not-utf8", "text-encoding", 2, ["ijbc_face_tid_mid.txt:2", "not UTF-8"], EVAL_OUT)
def _(t):
    meta, store = ijb_files(t / "in", tid_mid=b"0.jpg 0 0\n" + NOT_UTF8)
    return ["evaluate", "--protocol", "ijbc", "--features", str(store), "--meta-dir", str(meta), "--out", str(t / "out/rec.json")]


@case("ijb-pair-labels-not-utf8", "text-encoding", 2, ["ijbc_template_pair_label.txt:1", "not UTF-8"], EVAL_OUT)
def _(t):
    meta, store = ijb_files(t / "in", pairs=NOT_UTF8.decode("latin-1").encode("latin-1").decode("latin-1"))
    (meta / "ijbc_template_pair_label.txt").write_bytes(NOT_UTF8)
    return ["evaluate", "--protocol", "ijbc", "--features", str(store), "--meta-dir", str(meta), "--out", str(t / "out/rec.json")]


@case("record-not-utf8", "text-encoding", 2, ["r.json:1", "not UTF-8"], ["out/fig.png"])
def _(t):
    return ["plot-roc", str(write(t / "in/r.json", b'{"a": "\xff"}')), "-o", str(t / "out/fig.png")]


@case("landmarks-not-utf8", "text-encoding", 2, ["lm.txt:2", "not UTF-8"], ["out/o.rec", "out/o.idx"])
def _(t):
    image_folder(t / "in/f")
    write(t / "in/lm.txt", b"# x\n" + NOT_UTF8)
    return ["pack-rec", str(t / "in/f"), str(t / "out/o"), "--landmarks", str(t / "in/lm.txt"), "--quiet"]


@case("trillion-labels-not-utf8", "text-encoding", 2, ["labels.txt:1", "not UTF-8"], EVAL_OUT)
def _(t):
    rng = np.random.default_rng(0)
    probes = trillion_bin(t / "in/p.bin", rng.standard_normal((4, 8)))
    dis = trillion_bin(t / "in/d.bin", rng.standard_normal((6, 8)))
    write(t / "in/labels.txt", NOT_UTF8)
    return ["evaluate", "--protocol", "trillion", "--features", str(probes), "--probe-labels", str(t / "in/labels.txt"),
            "--distractor-features", str(dis), "--out", str(t / "out/rec.json")]


@case("megaface-list-not-utf8", "text-encoding", 2, ["fs.json:1", "not UTF-8"], EVAL_OUT)
def _(t):
    write(t / "in/fs.json", b'{"path": ["\xff"]}')
    write(t / "in/mf.json", '{"path": ["a.jpg"]}')
    return ["evaluate", "--protocol", "megaface", "--features", str(save_store(t / "in/s.npz", ["a"])),
            "--facescrub-list", str(t / "in/fs.json"), "--megaface-list", str(t / "in/mf.json"), "--noise-rule", "none",
            "--out", str(t / "out/rec.json")]


@case("record-truncated-json", "corrupt-file", 2, ["r.json", "not valid JSON"], ["out/fig.png"])
def _(t):
    raw = record_file(t / "in/r.json").read_text()
    return ["plot-roc", str(write(t / "in/r.json", raw[: len(raw) // 2])), "-o", str(t / "out/fig.png")]


@case("record-json-list", "corrupt-file", 2, ["r.json", "not an object"], ["out/fig.png"])
def _(t):
    return ["plot-roc", str(write(t / "in/r.json", "[1, 2]")), "-o", str(t / "out/fig.png")]


@case("record-deep-json", "corrupt-file", 2, ["r.json"], ["out/fig.png"])
def _(t):
    return ["plot-roc", str(write(t / "in/r.json", "[" * 100000 + "]" * 100000)), "-o", str(t / "out/fig.png")]


@case("plot-roc-unknown-extension", "corrupt-file", 2, ["-o", "unknown figure format .xyz", ".png"], ["out/fig.xyz"])
def _(t):
    return ["plot-roc", str(record_file(t / "in/r.json")), "-o", str(t / "out/fig.xyz")]


@case("plot-roc-string-curve", "corrupt-file", 2, ["r.json", "curves.roc.fpr[0]", "'0.001'"], ["out/fig.png"])
def _(t):
    r = record_file(t / "in/r.json", curves={"roc": {"fpr": ["0.001", "0.1"], "tpr": [0.5, 0.9]}})
    return ["plot-roc", str(r), "-o", str(t / "out/fig.png")]


@case("plot-roc-curve-lengths-differ", "corrupt-file", 2, ["r.json", "one length"], ["out/fig.png"])
def _(t):
    r = record_file(t / "in/r.json", curves={"roc": {"fpr": [0.001, 0.1], "tpr": [0.5]}})
    return ["plot-roc", str(r), "-o", str(t / "out/fig.png")]


def _figure_written(t, out, err):
    assert (t / "out/fig.png").read_bytes()[:4] == b"\x89PNG"


@case("plot-roc-mathtext-label", "handled", 0, check=_figure_written)
def _(t):
    return ["plot-roc", str(record_file(t / "in/r.json")), "-o", str(t / "out/fig.png"), "--label", r"$\frac{$",
            "--title", "50$ and $x^"]


@case("plot-roc-string-metric", "handled", 0, check=_figure_written)
def _(t):
    return ["plot-roc", str(record_file(t / "in/r.json", metrics={"Acc": "99.2"})), "-o", str(t / "out/fig.png")]


@case("blufr-mat-truncated", "corrupt-file", 2, ["blufr_lfw_config.mat", "not a readable MATLAB"], EVAL_OUT)
def _(t):
    mat, store = blufr_files(t / "in")
    mat.write_bytes(mat.read_bytes()[:300])
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--out", str(t / "out/rec.json")]


@case("blufr-empty-gallery", "corrupt-file", 2, ["trial 1", "galIndex{1} is empty"], EVAL_OUT)
def _(t):
    def gal(cfg):
        g = cfg["galIndex"].copy()
        g[0, 0] = np.zeros((0, 1))
        return g
    mat, store = blufr_files(t / "in", galIndex=gal)
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--out", str(t / "out/rec.json")]


@case("blufr-string-labels", "corrupt-file", 2, ["labels must be numeric"], EVAL_OUT)
def _(t):
    mat, store = blufr_files(t / "in", labels=lambda cfg: np.array([str(int(v)) for v in cfg["labels"].ravel()], dtype=object))
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--out", str(t / "out/rec.json")]


@case("blufr-fractional-index", "corrupt-file", 2, ["testIndex{1}", "must hold integers", "1.5"], EVAL_OUT)
def _(t):
    def fractional(cfg):
        c = cfg["testIndex"].copy()
        c[0, 0] = c[0, 0].copy()
        c[0, 0][0, 0] = 1.5
        return c
    mat, store = blufr_files(t / "in", testIndex=fractional)
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--out", str(t / "out/rec.json")]


@case("blufr-no-impostor-probes", "corrupt-file", 2, ["trial 1", "impostor probes"], EVAL_OUT)
def _(t):
    mat, store = blufr_files(t / "in", probIndex=lambda cfg: cfg["galIndex"])
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--out", str(t / "out/rec.json")]


@case("blufr-repeated-index", "corrupt-file", 2, ["testIndex{1}", "repeats an image index"], EVAL_OUT)
def _(t):
    def repeated(cfg):
        c = cfg["testIndex"].copy()
        c[0, 0] = np.r_[c[0, 0].ravel(), [1.0]].reshape(-1, 1)
        return c
    mat, store = blufr_files(t / "in", testIndex=repeated)
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--out", str(t / "out/rec.json")]


@case("bin-truncated", "corrupt-file", 2, ["s.bin", "not an insightface .bin"], EVAL_OUT)
def _(t):
    data = pickle.dumps(([jpeg(i) for i in range(20)], [True, False] * 5))
    b = write(t / "in/s.bin", data[: len(data) // 2])
    return ["evaluate", "--protocol", "bin", "--features", str(save_store(t / "in/b.npz", ["a"])), "--pairs", str(b),
            "--out", str(t / "out/rec.json")]


@case("rec-idx-garbage", "corrupt-file", 2, ["r.idx", "line 1", "key<TAB>offset"])
def _(t):
    rec_files(t / "in/r")
    write(t / "in/r.idx", b"\x00\xff garbage\n")
    return ["inspect-rec", str(t / "in/r")]


@case("rec-truncated", "corrupt-file", 2, ["r.idx", "past the end"])
def _(t):
    rec_files(t / "in/r")
    data = (t / "in/r.rec").read_bytes()
    (t / "in/r.rec").write_bytes(data[: len(data) // 3])
    return ["inspect-rec", str(t / "in/r")]


@case("rec-corrupt-payload", "corrupt-file", 1, ["key 2", "not a decodable image"])
def _(t):
    from arface_repro.data.rec_writer import FaceRecWriter

    with FaceRecWriter(t / "in/r", 2, 1) as w:
        w.add(0, jpeg(1))
        w.add(0, b"\xff\xd8 not a jpeg")
    return ["inspect-rec", str(t / "in/r")]


@case("rec-empty", "corrupt-file", 1, ["r.idx lists no records"])
def _(t):
    write(t / "in/r.rec", b"")
    write(t / "in/r.idx", b"")
    return ["inspect-rec", str(t / "in/r")]


@case("blufr-mat-empty", "corrupt-file", 2, ["blufr_lfw_config.mat", "not a readable MATLAB"], EVAL_OUT)
def _(t):
    mat, store = blufr_files(t / "in")
    mat.write_bytes(b"")
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--out", str(t / "out/rec.json")]


@case("bin-empty", "corrupt-file", 2, ["s.bin", "not an insightface .bin"], EVAL_OUT)
def _(t):
    b = write(t / "in/s.bin", b"")
    return ["evaluate", "--protocol", "bin", "--features", str(save_store(t / "in/b.npz", ["a"])), "--pairs", str(b),
            "--out", str(t / "out/rec.json")]


@case("config-empty", "corrupt-file", 2, ["bad.yaml", "empty"], ["out/run/checkpoint_last.pt", "out/run/metrics.jsonl"])
def _(t):
    return ["train", str(write(t / "in/bad.yaml", "")), "--out-dir", str(t / "out/run"), "--quiet"]


@case("record-empty", "corrupt-file", 2, ["r.json", "not valid JSON"], ["out/fig.png"])
def _(t):
    return ["plot-roc", str(write(t / "in/r.json", b"")), "-o", str(t / "out/fig.png")]


@case("landmarks-empty", "corrupt-file", 2, ["lm.txt", "no landmarks for image"], ["out/o.rec"])
def _(t):
    image_folder(t / "in/f")
    write(t / "in/lm.txt", "")
    return ["pack-rec", str(t / "in/f"), str(t / "out/o"), "--landmarks", str(t / "in/lm.txt"), "--quiet"]


@case("tflite-empty", "corrupt-file", 2, ["m.tflite"], ["out/f.npz"])
def _(t):
    image_folder(t / "in/img", 1, 1)
    write(t / "in/m.tflite", b"")
    return ["embed", "--model", f"tflite:{t / 'in/m.tflite'}", "--data-root", str(t / "in/img"), "--out", str(t / "out/f.npz"),
            "--workers", "0"]


@case("pb-empty", "corrupt-file", 2, ["g.pb", "no nodes"], ["out/f.npz"])
def _(t):
    image_folder(t / "in/img", 1, 1)
    write(t / "in/g.pb", b"")
    return ["embed", "--model", f"opencv:{t / 'in/g.pb'}", "--data-root", str(t / "in/img"), "--out", str(t / "out/f.npz"),
            "--workers", "0"]


@case("onnx-garbage", "corrupt-file", 2, ["m.onnx", "not a loadable ONNX model"], ["out/f.npz"])
def _(t):
    image_folder(t / "in/img", 1, 1)
    write(t / "in/m.onnx", b"\x08\x07garbage" * 10)
    return ["embed", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in/img"), "--out", str(t / "out/f.npz"),
            "--workers", "0"]


@case("onnx-empty", "corrupt-file", 2, ["m.onnx"], ["out/f.npz"])
def _(t):
    image_folder(t / "in/img", 1, 1)
    write(t / "in/m.onnx", b"")
    return ["embed", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in/img"), "--out", str(t / "out/f.npz"),
            "--workers", "0"]


@case("tflite-garbage", "corrupt-file", 2, ["m.tflite"], ["out/f.npz"])
def _(t):
    image_folder(t / "in/img", 1, 1)
    write(t / "in/m.tflite", b"TFL3" + b"\x00garbage" * 10)
    return ["embed", "--model", f"tflite:{t / 'in/m.tflite'}", "--data-root", str(t / "in/img"), "--out", str(t / "out/f.npz"),
            "--workers", "0"]


@case("pb-garbage", "corrupt-file", 2, ["g.pb"], ["out/f.npz"])
def _(t):
    image_folder(t / "in/img", 1, 1)
    write(t / "in/g.pb", b"\x0a\xff\xff\xff\xff\x0fgarbage")
    return ["embed", "--model", f"opencv:{t / 'in/g.pb'}", "--data-root", str(t / "in/img"), "--out", str(t / "out/f.npz"),
            "--workers", "0"]


@case("caffe-garbage", "corrupt-file", 2, ["n.prototxt"], ["out/f.npz"])
def _(t):
    image_folder(t / "in/img", 1, 1)
    write(t / "in/n.prototxt", "layer { name: \"x\" type: ")
    write(t / "in/w.caffemodel", b"\x0a\x03abc")
    return ["embed", "--model", f"caffe:{t / 'in/n.prototxt'}:{t / 'in/w.caffemodel'}", "--data-root", str(t / "in/img"),
            "--out", str(t / "out/f.npz"), "--workers", "0"]


@case("caffemodel-garbage", "corrupt-file", 2, ["w.caffemodel"], ["out/f.npz"])
def _(t):
    image_folder(t / "in/img", 1, 1)
    write(t / "in/n.prototxt", 'name: "n"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n')
    write(t / "in/w.caffemodel", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")
    return ["embed", "--model", f"caffe:{t / 'in/n.prototxt'}:{t / 'in/w.caffemodel'}", "--data-root", str(t / "in/img"),
            "--out", str(t / "out/f.npz"), "--workers", "0"]


@case("pt-text-file", "corrupt-file", 2, ["m.pth", "not a readable PyTorch checkpoint"], ["out/m.onnx"])
def _(t):
    write(t / "in/m.pth", "not a checkpoint\n")
    return ["export-onnx", "tiny_resnet", "--checkpoint", str(t / "in/m.pth"), "-o", str(t / "out/m.onnx")]


@case("pt-empty", "corrupt-file", 2, ["m.pth", "not a readable PyTorch checkpoint"], ["out/m.onnx"])
def _(t):
    write(t / "in/m.pth", b"")
    return ["export-onnx", "tiny_resnet", "--checkpoint", str(t / "in/m.pth"), "-o", str(t / "out/m.onnx")]


@case("pt-wrong-architecture", "corrupt-file", 2, ["m.pth", "does not fit architecture"], ["out/m.onnx"])
def _(t):
    import torch

    torch_file(t / "in/m.pth", {"conv.weight": torch.zeros(3)})
    return ["export-onnx", "tiny_resnet", "--checkpoint", str(t / "in/m.pth"), "-o", str(t / "out/m.onnx")]


@case("torchscript-garbage", "corrupt-file", 2, ["m.pt", "not a loadable TorchScript"], ["out/f.npz"])
def _(t):
    image_folder(t / "in/img", 1, 1)
    write(t / "in/m.pt", b"PK\x03\x04garbage")
    return ["embed", "--model", f"torchscript:{t / 'in/m.pt'}", "--data-root", str(t / "in/img"), "--out", str(t / "out/f.npz"),
            "--workers", "0"]


@case("preset-broken", "corrupt-file", 2, ["bad.yaml", "normalization"], ["out/f.npz"])
def _(t):
    write(t / "in/protocols/models/bad.yaml", "name: bad\nbackend: onnx\ninput: {size: [112, 112], normalization: {mean: 1}}\n"
                                              "crop: {mode: template}\n")
    write(t / "in/m.onnx", b"x")
    os.environ["ARFACE_PROTOCOLS"] = str(t / "in/protocols")
    return ["embed", "--model", f"bad:{t / 'in/m.onnx'}", "--data-root", str(t / "in"), "--out", str(t / "out/f.npz")]


@case("preset-not-utf8", "text-encoding", 2, ["bad.yaml", "not UTF-8"], ["out/f.npz"])
def _(t):
    write(t / "in/protocols/models/bad.yaml", b"name: bad\n" + NOT_UTF8)
    write(t / "in/m.onnx", b"x")
    os.environ["ARFACE_PROTOCOLS"] = str(t / "in/protocols")
    return ["embed", "--model", f"bad:{t / 'in/m.onnx'}", "--data-root", str(t / "in"), "--out", str(t / "out/f.npz")]


@case("protocol-spec-broken", "corrupt-file", 2, ["lfw.yaml", "layout"], EVAL_OUT)
def _(t):
    d = protocols_copy(t / "in")
    text = (d / "lfw.yaml").read_text()
    (d / "lfw.yaml").write_text(text.replace("layout:", "layout: [1, 2]\nold_layout:"))
    os.environ["ARFACE_PROTOCOLS"] = str(d)
    return lfw_eval(t)


@case("protocol-spec-escapes-root", "path-traversal", 2, ["lfw.yaml", "inside the data root"], EVAL_OUT)
def _(t):
    d = protocols_copy(t / "in")
    text = (d / "lfw.yaml").read_text()
    (d / "lfw.yaml").write_text(text.replace("pairs: pairs.txt", "pairs: ../../etc/passwd"))
    os.environ["ARFACE_PROTOCOLS"] = str(d)
    return lfw_eval(t)


@case("landmarks-nan", "bad-number", 2, ["lm.txt", "line 1", "10 numbers"], ["out/o.rec"])
def _(t):
    image_folder(t / "in/f")
    write(t / "in/lm.txt", "id00/000.jpg " + " ".join(["nan"] * 10) + "\n")
    return ["pack-rec", str(t / "in/f"), str(t / "out/o"), "--landmarks", str(t / "in/lm.txt"), "--quiet"]


@case("landmarks-overflow", "bad-number", 2, ["lm.txt", "line 1", "10 numbers"], ["out/o.rec"])
def _(t):
    image_folder(t / "in/f")
    write(t / "in/lm.txt", "id00/000.jpg " + " ".join(["1e39"] * 10) + "\n")
    return ["pack-rec", str(t / "in/f"), str(t / "out/o"), "--landmarks", str(t / "in/lm.txt"), "--quiet"]


@case("ijb-pair-label-2", "corrupt-file", 2, ["ijbc_template_pair_label.txt", "label must be 0 or 1"], EVAL_OUT)
def _(t):
    meta, store = ijb_files(t / "in", pairs="0 1 2\n")
    return ["evaluate", "--protocol", "ijbc", "--features", str(store), "--meta-dir", str(meta), "--out", str(t / "out/rec.json")]


@case("ijb-faceness-nan", "bad-number", 2, ["ijbc_name_5pts_score.txt:1", "finite"], EVAL_OUT)
def _(t):
    meta, store = ijb_files(t / "in", pts="".join(f"{i}.jpg " + " ".join(["50"] * 10) + " nan\n" for i in range(8)))
    return ["evaluate", "--protocol", "ijbc", "--features", str(store), "--meta-dir", str(meta), "--out", str(t / "out/rec.json")]


@case("ijb-template-id-huge", "bad-number", 2, ["ijbc_template_pair_label.txt", "99999999999999999999"], EVAL_OUT)
def _(t):
    meta, store = ijb_files(t / "in", pairs="0 99999999999999999999 1\n0 1 0\n")
    return ["evaluate", "--protocol", "ijbc", "--features", str(store), "--meta-dir", str(meta), "--out", str(t / "out/rec.json")]


@case("trillion-header-lies", "corrupt-file", 2, ["p.bin", "header"], EVAL_OUT)
def _(t):
    write(t / "in/p.bin", struct.pack("<4i", 1000000, 8, 32, 5) + b"\0" * 64)
    write(t / "in/labels.txt", "a\n")
    return ["evaluate", "--protocol", "trillion", "--features", str(t / "in/p.bin"), "--probe-labels",
            str(t / "in/labels.txt"), "--distractor-features", str(t / "in/p.bin"), "--out", str(t / "out/rec.json")]


@case("trillion-nan-row", "bad-number", 2, ["d.bin", "row 2", "NaN"], EVAL_OUT)
def _(t):
    rng = np.random.default_rng(0)
    probes = trillion_bin(t / "in/p.bin", rng.standard_normal((4, 8)))
    x = rng.standard_normal((6, 8))
    x[2, 3] = np.nan
    dis = trillion_bin(t / "in/d.bin", x)
    write(t / "in/labels.txt", "a\na\nb\nb\n")
    return ["evaluate", "--protocol", "trillion", "--features", str(probes), "--probe-labels", str(t / "in/labels.txt"),
            "--distractor-features", str(dis), "--out", str(t / "out/rec.json")]


@case("megaface-devkit-nan", "bad-number", 2, ["x.jpg_a.bin", "NaN"], EVAL_OUT)
def _(t):
    write(t / "in/fs.json", '{"id": ["p", "p"], "path": ["p/x.jpg", "p/y.jpg"]}')
    write(t / "in/mf.json", '{"path": ["d/0.jpg"]}')
    for name in ("p/x.jpg", "p/y.jpg"):
        v = np.ones(4, "<f4")
        if name == "p/x.jpg":
            v[1] = np.nan
        write(t / f"in/fsf/{name}_a.bin", struct.pack("<4i", 4, 1, 4, 5) + v.tobytes())
    write(t / "in/mff/d/0.jpg_a.bin", struct.pack("<4i", 4, 1, 4, 5) + np.ones(4, "<f4").tobytes())
    return ["evaluate", "--protocol", "megaface", "--facescrub-dir", str(t / "in/fsf"), "--megaface-dir", str(t / "in/mff"),
            "--algo", "a", "--facescrub-list", str(t / "in/fs.json"), "--megaface-list", str(t / "in/mf.json"),
            "--noise-rule", "none", "--sizes", "1", "--out", str(t / "out/rec.json")]


@case("image-list-empty", "corrupt-file", 2, ["l.txt", "empty"], ["out/f.npz"])
def _(t):
    write(t / "in/l.txt", "# nothing\n\n")
    write(t / "in/m.onnx", b"x")
    return ["embed", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in"), "--list", str(t / "in/l.txt"),
            "--out", str(t / "out/f.npz")]


@case("image-list-is-a-folder", "corrupt-file", 2, ["l", "not found"], ["out/f.npz"])
def _(t):
    (t / "in/l").mkdir()
    write(t / "in/m.onnx", b"x")
    return ["embed", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in"), "--list", str(t / "in/l"),
            "--out", str(t / "out/f.npz")]


@case("features-is-a-folder", "corrupt-file", 2, ["s.npz", "not found"], EVAL_OUT)
def _(t):
    pairs, _ = lfw_files(t / "in")
    (t / "in/s.npz").mkdir()
    return ["evaluate", "--protocol", "lfw", "--features", str(t / "in/s.npz"), "--pairs", str(pairs), "--out", str(t / "out/rec.json")]


@case("image-unreadable", "corrupt-file", 2, ["bad.jpg", "not a readable image"], ["out/f.npz"])
def _(t):
    torch_file(t / "in/m.pth", tiny_state_dict())
    write(t / "in/img/a/bad.jpg", b"\xff\xd8 not really")
    return ["embed", "--model", f"torch:tiny_resnet:{t / 'in/m.pth'}", "--data-root", str(t / "in/img"),
            "--out", str(t / "out/f.npz"), "--workers", "0", "--no-flip", "--quiet"]


# ---- numbers out of range

def _numeric(cmd_builder, flag, value):
    def build(t):
        return cmd_builder(t) + [flag, value]
    return build


def _lfw_model(t):
    pairs, _ = lfw_files(t / "in")
    write(t / "in/m.onnx", b"x")
    return ["evaluate", "--protocol", "lfw", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in"),
            "--pairs", str(pairs), "--out", str(t / "out/rec.json"), "--cache-dir", "none"]


def _embed_cmd(t):
    write(t / "in/m.onnx", b"x")
    return ["embed", "--model", f"onnx:{t / 'in/m.onnx'}", "--data-root", str(t / "in"), "--out", str(t / "out/f.npz")]


def _ijbc_cmd(t):
    meta, store = ijb_files(t / "in")
    return ["evaluate", "--protocol", "ijbc", "--features", str(store), "--meta-dir", str(meta), "--out", str(t / "out/rec.json")]


def _trillion_cmd(t):
    return ["evaluate", "--protocol", "trillion", "--features", "p.bin", "--out", str(t / "out/rec.json")]


def _megaface_cmd(t):
    return ["evaluate", "--protocol", "megaface", "--features", "s.npz", "--out", str(t / "out/rec.json")]


def _align_cmd(t):
    image_folder(t / "in/img", 1, 1)
    return ["align", str(t / "in/img"), str(t / "out/crops"), "--weights", str(t / "in/img")]


def _plot_cmd(t):
    return ["plot-roc", str(record_file(t / "in/r.json")), "-o", str(t / "out/fig.png")]


def _blufr_cmd(t):
    mat, store = blufr_files(t / "in")
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat), "--out", str(t / "out/rec.json")]


NUMERIC = [
    ("evaluate-workers-negative", _lfw_model, "--workers", "-1", ["--workers", "-1"]),
    ("evaluate-batch-size-0", _lfw_model, "--batch-size", "0", ["--batch-size", "1..65536"]),
    ("embed-workers-negative", _embed_cmd, "--workers", "-1", ["--workers"]),
    ("embed-batch-size-0", _embed_cmd, "--batch-size", "0", ["--batch-size"]),
    ("embed-batch-size-huge-text", _embed_cmd, "--batch-size", "1e99", ["--batch-size", "integer"]),
    ("ijbc-max-memory-nan", _ijbc_cmd, "--max-memory-gb", "nan", ["--max-memory-gb", "finite"]),
    ("ijbc-max-memory-negative", _ijbc_cmd, "--max-memory-gb", "-2", ["--max-memory-gb"]),
    ("ijbc-curve-points-negative", _ijbc_cmd, "--curve-points", "-5", ["--curve-points"]),
    ("blufr-trial-workers-0", _blufr_cmd, "--trial-workers", "0", ["--trial-workers"]),
    ("trillion-ver-fpr-above-1", _trillion_cmd, "--ver-fpr", "2", ["--ver-fpr"]),
    ("trillion-id-fpr-inf", _trillion_cmd, "--id-fpr", "inf", ["--id-fpr"]),
    ("megaface-max-rank-0", _megaface_cmd, "--max-rank", "0", ["--max-rank"]),
    ("align-threads-0", _align_cmd, "--threads", "0", ["--threads"]),
    ("align-quality-101", _align_cmd, "--quality", "101", ["--quality"]),
    ("align-min-face-negative", _align_cmd, "--min-face", "-3", ["--min-face"]),
    ("align-margin-nan", _align_cmd, "--margin", "nan", ["--margin"]),
    ("plot-roc-xmin-negative", _plot_cmd, "--xmin", "-1", ["--xmin"]),
    ("export-onnx-opset-99", lambda t: ["export-onnx", "tiny_resnet", "--checkpoint",
                                        str(torch_file(t / "in/m.pth", tiny_state_dict())), "-o", str(t / "out/m.onnx")],
     "--opset", "99", ["--opset 99", "exports opsets"]),
    ("export-onnx-opset-0", lambda t: ["export-onnx", "tiny_resnet", "--checkpoint",
                                       str(torch_file(t / "in/m.pth", tiny_state_dict())), "-o", str(t / "out/m.onnx")],
     "--opset", "0", ["--opset 0"]),
    ("megaface-sizes-negative", _megaface_cmd, "--sizes", "-10", ["--sizes"]),
    ("megaface-sizes-overflow", _megaface_cmd, "--sizes", "1e400", ["--sizes", "integers"]),
    ("megaface-sizes-fraction", _megaface_cmd, "--sizes", "10.5", ["--sizes", "integers"]),
    ("megaface-max-rank-huge", _megaface_cmd, "--max-rank", "1000000000", ["--max-rank", "1..1000"]),
    ("rmfrd-max-memory-huge", lambda t: ["evaluate", "--protocol", "rmfrd", "--features", "s.npz"], "--max-memory-gb",
     "1e300", ["--max-memory-gb", "<= 1e+06"]),
    ("evaluate-workers-fork-storm", _lfw_model, "--workers", "100000", ["--workers", "0..256"]),
    ("embed-workers-fork-storm", _embed_cmd, "--workers", "100000", ["--workers", "0..256"]),
    ("embed-preprocess-size-huge", _embed_cmd, "--preprocess", "size=100000x100000", ["preprocess size", "1..4096"]),
    ("embed-preprocess-mean-nan", _embed_cmd, "--preprocess", "mean=nan", ["preprocess mean", "finite"]),
    ("align-margin-huge", _align_cmd, "--margin", "1e300", ["--margin"]),
    ("align-threads-huge", _align_cmd, "--threads", "100000", ["--threads"]),
    ("pack-rec-quality-0", lambda t: ["pack-rec", str(image_folder(t / "in/f")), str(t / "out/o")], "--quality", "0",
     ["--quality"]),
    ("make-subset-per-identity-negative", lambda t: ["make-subset", str(image_folder(t / "in/f")), str(t / "out/o"),
                                                     "--lfw-names", str(write(t / "in/n.txt", "Nobody\n"))],
     "--per-identity", "-1", ["--per-identity"]),
]
for _name, _builder, _flag, _value, _words in NUMERIC:
    CASES.append(Case(_name, "bad-number", _numeric(_builder, _flag, _value), 2, tuple(_words),
                      ("out/rec.json", "out/f.npz", "out/m.onnx", "out/fig.png", "out/crops", "out/o.rec")))


# ---- training config values (each one line naming the file or override and the key)

TRAIN_CONFIG_CASES = [
    ("lr-nan-file", "train: {lr: .nan}\n", [], ["bad.yaml", "train.lr", "nan"]),
    ("lr-nan-override", "", ["train.lr=.nan"], ["override 'train.lr=.nan'", "train.lr"]),
    ("lr-inf", "train: {lr: .inf}\n", [], ["bad.yaml", "train.lr"]),
    ("p-layer-7.5", "method: {p_layer: 7.5}\n", [], ["bad.yaml", "method.p_layer", "7.5"]),
    ("batch-2.7", "train: {batch_size: 2.7}\n", [], ["bad.yaml", "train.batch_size", "integer", "2.7"]),
    ("lr-fast", "train: {lr: fast}\n", [], ["bad.yaml", "train.lr", "'fast'"]),
    ("steps-ten", "train: {steps: \"ten\"}\n", [], ["bad.yaml", "train.steps", "'ten'"]),
    ("lr-negative", "train: {lr: -0.5}\n", [], ["bad.yaml", "train.lr", "-0.5"]),
    ("lr-quoted-number", "train: {lr: \"1e-3\"}\n", [], ["bad.yaml", "train.lr", "'1e-3'"]),
    ("method-unknown", "method: {kind: magic}\n", [], ["bad.yaml", "method.kind", "arface"]),
    ("optimizer-unknown", "train: {optimizer: adam}\n", [], ["bad.yaml", "train.optimizer", "sgd"]),
    ("schedule-unknown", "", ["train.schedule=poly"], ["train.schedule", "cosine"]),
    ("model-unregistered", "", ["model.name=ir9000"], ["model.name", "unknown model architecture 'ir9000'"]),
    ("model-import-path", "", ["model.name=os:system"], ["unknown model architecture 'os:system'"]),
    ("workers-negative", "data: {num_workers: -1}\n", [], ["bad.yaml", "data.num_workers", "-1"]),
    ("workers-float", "", ["data.num_workers=1.5"], ["data.num_workers"]),
    ("dropout-range", "", ["model.kwargs.dropout=1.5"], ["model.kwargs.dropout", "1.5"]),
    ("model-kwarg-unknown", "", ["model.kwargs.bogus=1"], ["tiny_resnet", "bogus"]),
    ("head-kwarg-typo", "head: {name: amsoftmax, kwargs: {margin: 0.4}}\n", [], ["bad.yaml", "head.kwargs", "margin"]),
    ("head-kwarg-nan", "", ["head.kwargs.s=.nan"], ["head.kwargs", "'s'"]),
    ("num-layers-negative", "method: {num_layers: -1}\n", [], ["bad.yaml", "method.num_layers"]),
    ("num-layers-too-many", "method: {kind: arface, num_layers: 5}\n", [], ["method.num_layers=5", "4 maskable"]),
    ("keep-prob-zero", "method: {dropblock: {final_keep_prob: 0}}\n", [], ["method.dropblock.final_keep_prob"]),
    ("stages-unknown", "method: {dropblock: {stages: [stage7]}}\n", [], ["method.dropblock.stages"]),
    ("seed-negative", "seed: -1\n", [], ["bad.yaml", "seed"]),
    ("name-path", "", ["name=../../escape"], ["name", "path separators"]),
    ("pixel-std-zero", "data: {pixel_std: 0}\n", [], ["data.pixel_std"]),
    ("milestones-order", "train: {schedule: multistep, milestones: [0.9, 0.5]}\n", [], ["train.milestones"]),
    ("milestone-fraction-above-1", "train: {milestones: [2.5]}\n", [], ["train.milestones"]),
    ("warmup-too-long", "train: {warmup_steps: 500}\n", [], ["train.warmup_steps", "train.steps"]),
    ("unknown-key", "train: {lr: 0.1, nope: 1}\n", [], ["bad.yaml", "nope"]),
    ("section-not-mapping", "", ["method=5"], ["method", "mapping"]),
    ("section-override-unknown-key", "", ["method={kind: arface, bogus: 1}"], ["method.bogus"]),
    ("date-in-kwargs", "", ["model.kwargs.when=2020-01-01"], ["model.kwargs"]),
    ("bool-for-int", "train: {steps: true}\n", [], ["train.steps"]),
    ("rec-without-path", "data: {kind: rec}\n", [], ["data.path"]),
    ("device-unknown", "", ["train.device=tpu"], ["train.device"]),
    ("yaml-broken", "train: [unclosed\n", [], ["bad.yaml", "not valid YAML"]),
    ("steps-huge", "train: {steps: 1.0e+300}\n", [], ["bad.yaml", "train.steps"]),
    ("workers-fork-storm", "data: {num_workers: 100000}\n", [], ["bad.yaml", "data.num_workers", "100000"]),
]


def _train_case(yaml_text, overrides):
    def build(t):
        cfg = write(t / "in/bad.yaml", TRAIN_BASE + yaml_text)
        tiny = [o for o in TRAIN_TINY if f"{o.split('=')[0].split('.')[-1]}:" not in yaml_text]  # the file's value wins
        return ["train", str(cfg), *tiny, *overrides, "--out-dir", str(t / "out/run"), "--quiet"]
    return build


for _name, _yaml, _ov, _words in TRAIN_CONFIG_CASES:
    CASES.append(Case(f"train-config-{_name}", "config-validation", _train_case(_yaml, _ov), 2, tuple(_words),
                      ("out/run/checkpoint_last.pt", "out/run/metrics.jsonl")))


# --- round 3, part A: reads outside the model, code from data, bounded memory and time

@functools.cache
def tiny_onnx_bytes() -> bytes:
    """A 3×16×16 → 4 network (conv + global pooling) exported once per session: a real ONNX file."""
    import io

    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(1, 3, 16, 16), buf, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    return buf.getvalue()


def onnx_with_external(path: Path, location: str, data_file: Path | None = None) -> Path:
    """The tiny network with its conv weight stored as external data at `location` (written to `data_file`)."""
    from arface_repro.models.proto_schemas import onnx

    m = onnx()["ModelProto"]()
    m.ParseFromString(tiny_onnx_bytes())
    t = next(t for t in m.graph.initializer if len(t.dims) == 4)
    raw = t.raw_data
    t.ClearField("raw_data")
    t.data_location = 1  # EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(len(raw)))):
        e = t.external_data.add()
        e.key, e.value = k, v
    if data_file is not None:
        write(data_file, raw)
    return write(path, m.SerializeToString())


def _onnx_embed(t, model: Path, kind: str = "onnx:") -> list:
    image_folder(t / "in/img", 2, 2)
    return ["embed", "--model", f"{kind}{model}", "--data-root", str(t / "in/img"), "--out", str(t / "out/f.npz"),
            "--workers", "0", "--quiet"]


OUTSIDE = ("outside the model's folder", "only files inside")


@case("onnx-external-dotdot-onnxruntime", "read-outside-model", 2, ["m.onnx", "'../../../../../../../../etc/passwd'", *OUTSIDE],
      ["out/f.npz"])
def _(t):
    return _onnx_embed(t, onnx_with_external(t / "in/model/m.onnx", "../../../../../../../../etc/passwd"))


@case("onnx-external-dotdot-opencv", "read-outside-model", 2, ["m.onnx", "/etc/passwd", *OUTSIDE], ["out/f.npz"])
def _(t):
    return _onnx_embed(t, onnx_with_external(t / "in/model/m.onnx", "../../../../../../../../etc/passwd"), "opencv:")


@case("onnx-external-absolute", "read-outside-model", 2, ["m.onnx", "'/etc/passwd'", "absolute path"], ["out/f.npz"])
def _(t):
    return _onnx_embed(t, onnx_with_external(t / "in/model/m.onnx", "/etc/passwd"))


@case("onnx-external-absolute-opencv", "read-outside-model", 2, ["m.onnx", "'/etc/passwd'", "absolute path"], ["out/f.npz"])
def _(t):
    return _onnx_embed(t, onnx_with_external(t / "in/model/m.onnx", "/etc/passwd"), "opencv:")


@case("onnx-external-symlink-out", "read-outside-model", 2, ["m.onnx", "'w.bin'", "resolves to", *OUTSIDE], ["out/f.npz"])
def _(t):
    write(t / "in/elsewhere/w.bin", b"\0" * 432)
    (t / "in/model").mkdir(parents=True)
    os.symlink(t / "in/elsewhere/w.bin", t / "in/model/w.bin")
    return _onnx_embed(t, onnx_with_external(t / "in/model/m.onnx", "w.bin"))


@case("onnx-external-symlink-out-opencv", "read-outside-model", 2, ["m.onnx", "'w.bin'", *OUTSIDE], ["out/f.npz"])
def _(t):
    write(t / "in/elsewhere/w.bin", b"\0" * 432)
    (t / "in/model").mkdir(parents=True)
    os.symlink(t / "in/elsewhere/w.bin", t / "in/model/w.bin")
    return _onnx_embed(t, onnx_with_external(t / "in/model/m.onnx", "w.bin"), "opencv:")


@case("onnx-external-via-preset", "read-outside-model", 2, ["m.onnx", "/etc/passwd", *OUTSIDE], ["out/f.npz"])
def _(t):
    write(t / "in/protocols/models/ext.yaml", "name: ext\nbackend: onnx\ninput: {size: [16, 16]}\ncrop: {mode: template}\n")
    os.environ["ARFACE_PROTOCOLS"] = str(t / "in/protocols")
    return _onnx_embed(t, onnx_with_external(t / "in/model/m.onnx", "../../../../../../../../etc/passwd"), "ext:")


@case("onnx-external-a-fifo", "read-outside-model", 2, ["m.onnx", "FIFO"], ["out/f.npz"])
def _(t):
    (t / "in/model").mkdir(parents=True)
    os.mkfifo(t / "in/model/w.bin")
    return _onnx_embed(t, onnx_with_external(t / "in/model/m.onnx", "w.bin"))


@case("onnx-external-length-lies", "read-outside-model", 2, ["m.onnx", "past the end"], ["out/f.npz"])
def _(t):
    write(t / "in/model/w.bin", b"\0" * 10)
    return _onnx_embed(t, onnx_with_external(t / "in/model/m.onnx", "w.bin"))


def _embedded_like_inline(t, out, err):
    """The model with external data gives the features of the same network stored inline."""
    from arface_repro.data.face_datasets import read_image
    from arface_repro.io.feature_store import load_feature_store
    from arface_repro.models.backends import load_model

    store = load_feature_store(t / "out/f.npz")
    inline = write(t / "inline.onnx", tiny_onnx_bytes())
    imgs = np.stack([read_image(t / "in/img" / p) for p in store.paths.tolist()])
    np.testing.assert_allclose(store.features, load_model(f"onnx:{inline}").embed(imgs), rtol=1e-5, atol=1e-6)


@case("onnx-external-inside-folder", "handled", 0, check=_embedded_like_inline)
def _(t):
    return _onnx_embed(t, onnx_with_external(t / "in/model/m.onnx", "data/w.bin", t / "in/model/data/w.bin"))


@case("onnx-external-inside-folder-opencv", "handled", 0, check=_embedded_like_inline)
def _(t):
    return _onnx_embed(t, onnx_with_external(t / "in/model/m.onnx", "w.bin", t / "in/model/w.bin"), "opencv:")


@case("preset-backend-torchscript", "code-from-data", 2, ["preset ts", "torchscript", "program"], ["out/f.npz"])
def _(t):
    import torch

    write(t / "in/protocols/models/ts.yaml", "name: ts\nbackend: torchscript\ninput: {size: [16, 16]}\ncrop: {mode: template}\n")
    os.environ["ARFACE_PROTOCOLS"] = str(t / "in/protocols")
    (t / "in").mkdir(exist_ok=True)
    with warnings.catch_warnings():  # torch.jit is deprecated, but TorchScript files exist
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(torch.nn.Flatten()).save(str(t / "in/m.pt"))
    return _onnx_embed(t, t / "in/m.pt", "ts:")


# YAML: alias expansion and nesting (train config, model preset, protocol spec)

def billion_laughs() -> str:
    """~350 bytes that expand to 9^9 (~390 million) strings through nested aliases."""
    text, prev = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n', "a"
    for n in "bcdefghi":
        text += f"{n}: &{n} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = n
    return text


@case("yaml-billion-laughs-config", "unbounded-memory", 2, ["bad.yaml", "not valid YAML", "expands to more than"],
      ["out/run/metrics.jsonl"])
def _(t):
    cfg = write(t / "in/bad.yaml", TRAIN_BASE + "extra:\n" + "".join("  " + ln + "\n" for ln in billion_laughs().splitlines()))
    return ["train", str(cfg), *TRAIN_TINY, "--out-dir", str(t / "out/run"), "--quiet"]


@case("yaml-billion-laughs-override", "unbounded-memory", 2, ["override", "not valid YAML", "expands to more than"],
      ["out/run/metrics.jsonl"])
def _(t):
    flow = "{" + billion_laughs().replace("\n", ", ").rstrip(", ") + "}"
    return ["train", str(_train_cfg(t)), *TRAIN_TINY, f"model.kwargs.x={flow}", "--out-dir", str(t / "out/run"), "--quiet"]


@case("yaml-billion-laughs-preset", "unbounded-memory", 2, ["lol.yaml", "not valid YAML", "expands to more than"],
      ["out/f.npz"])
def _(t):
    write(t / "in/protocols/models/lol.yaml", "name: lol\nbackend: onnx\n" + billion_laughs())
    os.environ["ARFACE_PROTOCOLS"] = str(t / "in/protocols")
    return _onnx_embed(t, write(t / "in/m.onnx", tiny_onnx_bytes()), "lol:")


@case("yaml-billion-laughs-protocol-spec", "unbounded-memory", 2, ["lfw.yaml", "not valid YAML", "expands to more than"],
      EVAL_OUT)
def _(t):
    d = protocols_copy(t / "in")
    write(d / "lfw.yaml", "name: lfw\n" + billion_laughs())
    os.environ["ARFACE_PROTOCOLS"] = str(d)
    return lfw_eval(t)


@case("yaml-deep-nesting-config", "unbounded-memory", 2, ["bad.yaml", "not valid YAML", "nested more than"],
      ["out/run/metrics.jsonl"])
def _(t):
    cfg = write(t / "in/bad.yaml", TRAIN_BASE + "extra: " + "[" * 20000 + "]" * 20000 + "\n")
    return ["train", str(cfg), *TRAIN_TINY, "--out-dir", str(t / "out/run"), "--quiet"]


@case("yaml-deep-nesting-protocol-spec", "unbounded-memory", 2, ["lfw.yaml", "nested more than"], EVAL_OUT)
def _(t):
    d = protocols_copy(t / "in")
    write(d / "lfw.yaml", "name: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n")
    os.environ["ARFACE_PROTOCOLS"] = str(d)
    return lfw_eval(t)


@case("yaml-recursive-alias-config", "unbounded-memory", 2, ["bad.yaml", "refers to a node that contains it"],
      ["out/run/metrics.jsonl"])
def _(t):
    cfg = write(t / "in/bad.yaml", TRAIN_BASE + "extra: &x [1, *x]\n")
    return ["train", str(cfg), *TRAIN_TINY, "--out-dir", str(t / "out/run"), "--quiet"]


# .npz members: sizes from the member headers, no object arrays, only the expected members

def npz_raw(path: Path, members: dict) -> Path:
    """An .npz from {name: (header dict, data bytes or an iterable of chunks, compress)} written member by member."""
    import io
    import zipfile

    from numpy.lib import format as npformat

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", allowZip64=True) as zf:
        for name, (header, data, compress) in members.items():
            info = zipfile.ZipInfo(f"{name}.npy")
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as fh:
                h = io.BytesIO()
                npformat.write_array_header_1_0(h, header)
                fh.write(h.getvalue())
                for chunk in ([data] if isinstance(data, bytes) else data):
                    fh.write(chunk)
    return path


def _lfw_with_store(t, store: Path) -> list:
    pairs, _ = lfw_files(t / "in")
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs),
            "--out", str(t / "out/rec.json"), "--quiet"]


@case("npz-member-declares-huge-shape", "unbounded-memory", 2, ["s.npz", "'features'", "declares shape (1000000000, 512)"],
      EVAL_OUT)
def _(t):
    s = npz_raw(t / "in/s.npz", {"features": ({"descr": "<f4", "fortran_order": False, "shape": (10**9, 512)},
                                              b"\0" * 64, False),
                                 "paths": ({"descr": "<U8", "fortran_order": False, "shape": (1,)}, "a/x.jpg\0".encode("utf-32-le"), False)})
    return _lfw_with_store(t, s)


@case("npz-deflate-bomb", "unbounded-memory", 2, ["s.npz", "'paths'", "would expand to"], EVAL_OUT)
def _(t):
    n = 300 << 20  # 300 MiB of zeros, ~300 KB compressed
    s = npz_raw(t / "in/s.npz", {"features": ({"descr": "<f4", "fortran_order": False, "shape": (1, 4)}, b"\0\0\x80?" * 4, False),
                                 "paths": ({"descr": "<U1024", "fortran_order": False, "shape": (n // 4096,)},
                                           (b"\0" * (1 << 20) for _ in range(n >> 20)), True)})
    return _lfw_with_store(t, s)


@case("npz-extra-member-array", "unbounded-memory", 2, ["lfw.npz", "unexpected member 'labels'", "metadata strings"], EVAL_OUT)
def _(t):
    argv = _lfw_with_store(t, t / "in/lfw.npz")
    with np.load(t / "in/lfw.npz") as z:
        arrays = {k: z[k] for k in z.files}
    with open(t / "in/lfw.npz", "wb") as fh:
        np.savez(fh, **arrays, labels=np.arange(100000))
    return argv


# images: the header's dimensions checked before decoding

def huge_jpeg(side: int = 65000) -> bytes:
    """A small real JPEG whose frame header (SOF0) claims side×side pixels."""
    b = bytearray(jpeg(0))
    i = b.index(b"\xff\xc0")
    b[i + 5:i + 9] = struct.pack(">HH", side, side)
    return bytes(b)


@case("image-header-huge-embed", "unbounded-memory", 2, ["huge.jpg", "65000×65000", "8192×8192"], ["out/f.npz"])
def _(t):
    image_folder(t / "in/img", 1, 1)
    write(t / "in/img/id00/huge.jpg", huge_jpeg())
    return ["embed", "--model", f"onnx:{write(t / 'in/m.onnx', tiny_onnx_bytes())}", "--data-root", str(t / "in/img"),
            "--out", str(t / "out/f.npz"), "--workers", "0", "--quiet"]


@case("image-header-huge-pack-rec", "unbounded-memory", 2, ["huge.jpg", "65000×65000"], ["out/o.rec", "out/o.idx"])
def _(t):
    image_folder(t / "in/f", 1, 1)
    write(t / "in/f/id00/huge.jpg", huge_jpeg())
    return ["pack-rec", str(t / "in/f"), str(t / "out/o"), "--quiet"]


def _align_reports_unreadable(t, out, err):
    report = (t / "out/crops/align_report.txt").read_text()
    assert "id00/huge.jpg\tunreadable" in report and "65000×65000" in report, report


@case("image-header-huge-align", "unbounded-memory", 0, check=_align_reports_unreadable)
def _(t):
    """`align` reports an unreadable image in its report and goes on (its documented behaviour): the header is
    refused before decoding, where OpenCV would allocate gigabytes or raise cv2.error."""
    from arface_repro.shared_data import shared_dir

    weights = (shared_dir() or Path("/nonexistent")) / "models/mtcnn-facenet-pytorch"
    if not (weights / "onet.pt").is_file():
        pytest.skip(f"needs the MTCNN weights of ../shared (or $ARFACE_SHARED): {weights} is absent")
    write(t / "in/img/id00/huge.jpg", huge_jpeg())
    return ["align", str(t / "in/img"), str(t / "out/crops"), "--weights", str(weights), "--quiet"]


@case("image-header-huge-bin-evaluate", "unbounded-memory", 2, ["s.bin", "image record 1", "65000×65000"], EVAL_OUT)
def _(t):
    b = write(t / "in/s.bin", pickle.dumps(([jpeg(0), huge_jpeg()] * 10, [True, False] * 5)))
    return ["evaluate", "--protocol", "bin", "--pairs", str(b), "--model", f"onnx:{write(t / 'in/m.onnx', tiny_onnx_bytes())}",
            "--out", str(t / "out/rec.json"), "--cache-dir", "none", "--quiet"]


@case("image-not-an-image-format", "unbounded-memory", 2, ["x.jpg", "not an image format this package reads"], ["out/f.npz"])
def _(t):
    image_folder(t / "in/img", 1, 1)
    write(t / "in/img/id00/x.jpg", b"<svg xmlns='http://www.w3.org/2000/svg' width='99999' height='99999'/>")
    return ["embed", "--model", f"onnx:{write(t / 'in/m.onnx', tiny_onnx_bytes())}", "--data-root", str(t / "in/img"),
            "--out", str(t / "out/f.npz"), "--workers", "0", "--quiet"]


# .bin, .idx, .mat, text files

class BigBytearray:
    """Pickles as bytearray(2**31 - 1): 2 GiB from a few bytes of file."""

    def __reduce__(self):
        return (bytearray, (2**31 - 1,))


@case("bin-bytearray-bomb", "unbounded-memory", 2, ["s.bin", "bytearray from something other than bytes"], EVAL_OUT)
def _(t):
    b = write(t / "in/s.bin", pickle.dumps(([BigBytearray()] * 20, [True, False] * 5), protocol=2))
    return ["evaluate", "--protocol", "bin", "--pairs", str(b), "--features", str(save_store(t / "in/s.npz", ["a"])),
            "--out", str(t / "out/rec.json")]


@case("idx-more-keys-than-records", "unbounded-memory", 2, ["r.idx", "more keys than", "can hold"])
def _(t):
    rec_files(t / "in/r")
    write(t / "in/r.idx", "".join(f"{k}\t0\n" for k in range(200000)))
    return ["inspect-rec", str(t / "in/r")]


@case("idx-long-line", "unbounded-memory", 2, ["r.idx", "line 1", "longer than 64"])
def _(t):
    rec_files(t / "in/r")
    write(t / "in/r.idx", "1" * 5_000_000 + "\t0\n")
    return ["inspect-rec", str(t / "in/r")]


def mat_compressed_zeros(name: str, n_doubles: int) -> bytes:
    """A MATLAB v5 miCOMPRESSED element holding a double column of `n_doubles` zeros, compressed in chunks."""
    import zlib

    nm = name.encode()
    body = struct.pack("<II", 6, 8) + struct.pack("<II", 6, 0) + struct.pack("<IIii", 5, 8, n_doubles, 1) \
        + struct.pack("<II", 1, len(nm)) + nm + b"\0" * (-len(nm) % 8) + struct.pack("<II", 9, 8 * n_doubles)
    matrix_bytes = len(body) + 8 * n_doubles
    c = zlib.compressobj(1)
    out = [c.compress(struct.pack("<II", 14, matrix_bytes) + body)]
    zeros = b"\0" * (1 << 20)
    left = 8 * n_doubles
    while left:
        k = min(left, len(zeros))
        out.append(c.compress(zeros[:k]))
        left -= k
    out.append(c.flush())
    data = b"".join(out)
    return struct.pack("<II", 15, len(data)) + data


@case("blufr-mat-compressed-bomb", "unbounded-memory", 2, ["blufr_lfw_config.mat", "expand to more than 256 MiB"], EVAL_OUT)
def _(t):
    mat, store = blufr_files(t / "in")
    with open(mat, "ab") as fh:
        fh.write(mat_compressed_zeros("devTrainIndex", 40 << 20))  # 320 MiB of doubles, ~0.3 MB on disk
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat),
            "--out", str(t / "out/rec.json"), "--quiet"]


@case("blufr-mat-unused-variable-not-read", "handled", 0)
def _(t):
    mat, store = blufr_files(t / "in")
    with open(mat, "ab") as fh:
        fh.write(mat_compressed_zeros("notUsed", 1000))
    return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat),
            "--out", str(t / "out/rec.json"), "--quiet"]


@case("pairs-file-too-large", "unbounded-memory", 2, ["pairs.txt", "65.0 MiB", "at most 64.0 MiB"], EVAL_OUT)
def _(t):
    argv = lfw_eval(t)
    os.truncate(t / "in/pairs.txt", 65 << 20)  # sparse: 65 MiB without writing them
    return argv


@case("pairs-line-too-long", "unbounded-memory", 2, ["pairs.txt:2", "bytes; a line of the pair list has at most"], EVAL_OUT)
def _(t):
    argv = lfw_eval(t)
    lines = (t / "in/pairs.txt").read_text().splitlines()
    lines[1] = lines[1] + "\t" + "x" * (2 << 20)
    write(t / "in/pairs.txt", "\n".join(lines) + "\n")
    return argv


# only regular files: FIFOs, devices and folders refused at once (a case that blocks fails on its timeout)

def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


@case("pairs-is-a-fifo", "not-a-regular-file", 2, ["p.fifo"], EVAL_OUT)
def _(t):
    _, store = lfw_files(t / "in")
    return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(fifo(t / "in/p.fifo")),
            "--out", str(t / "out/rec.json"), "--quiet"]


@case("features-is-a-fifo", "not-a-regular-file", 2, ["s.npz"], EVAL_OUT)
def _(t):
    pairs, _ = lfw_files(t / "in")
    return ["evaluate", "--protocol", "lfw", "--features", str(fifo(t / "in/s.npz")), "--pairs", str(pairs),
            "--out", str(t / "out/rec.json"), "--quiet"]


@case("landmarks-dev-zero-pack-rec", "not-a-regular-file", 2, ["/dev/zero", "character device"], ["out/o.rec", "out/o.idx"])
def _(t):
    image_folder(t / "in/f")
    return ["pack-rec", str(t / "in/f"), str(t / "out/o"), "--landmarks", "/dev/zero", "--quiet"]


@case("image-in-data-root-is-a-fifo", "not-a-regular-file", 2, ["001.jpg"], ["out/f.npz"])
def _(t):
    image_folder(t / "in/img", 1, 1)
    fifo(t / "in/img/id00/001.jpg")
    return ["embed", "--model", f"onnx:{write(t / 'in/m.onnx', tiny_onnx_bytes())}", "--data-root", str(t / "in/img"),
            "--out", str(t / "out/f.npz"), "--workers", "0", "--quiet"]


@case("record-is-a-fifo", "not-a-regular-file", 2, ["r.json"], ["out/fig.png"])
def _(t):
    return ["plot-roc", str(fifo(t / "in/r.json")), "-o", str(t / "out/fig.png")]


@case("config-is-dev-zero", "not-a-regular-file", 2, ["/dev/zero", "character device"], ["out/run/metrics.jsonl"])
def _(t):
    return ["train", "/dev/zero", "--out-dir", str(t / "out/run"), "--quiet"]


@case("ytf-splits-is-a-fifo", "not-a-regular-file", 2, ["splits.txt"], EVAL_OUT)
def _(t):
    _, store = ytf_files(t / "in")
    os.remove(t / "in/splits.txt")
    return ["evaluate", "--protocol", "ytf", "--features", str(store), "--splits", str(fifo(t / "in/splits.txt")),
            "--out", str(t / "out/rec.json"), "--quiet"]


@case("rec-idx-is-a-fifo", "not-a-regular-file", 2, ["r.idx"])
def _(t):
    rec_files(t / "in/r")
    os.remove(t / "in/r.idx")
    fifo(t / "in/r.idx")
    return ["inspect-rec", str(t / "in/r")]


@case("pack-rec-image-is-a-fifo", "not-a-regular-file", 2, ["001.jpg", "FIFO"], ["out/o.rec", "out/o.idx"])
def _(t):
    image_folder(t / "in/f", 1, 1)
    fifo(t / "in/f/id00/001.jpg")
    return ["pack-rec", str(t / "in/f"), str(t / "out/o"), "--quiet"]


@case("make-subset-image-is-a-fifo", "not-a-regular-file", 2, ["002.jpg", "FIFO"], ["out/o.rec", "out/o.idx"])
def _(t):
    image_folder(t / "in/f", 2, 2)
    fifo(t / "in/f/id01/002.jpg")
    names = write(t / "in/n.txt", "Nobody\n")
    return ["make-subset", str(t / "in/f"), str(t / "out/o"), "--lfw-names", str(names), "--per-identity", "2",
            "--keep-short", "--quiet"]


@case("preset-backend-torchscript-evaluate", "code-from-data", 2, ["preset ts", "torchscript", "program"], EVAL_OUT)
def _(t):
    import torch

    write(t / "in/protocols/models/ts.yaml", "name: ts\nbackend: torchscript\ninput: {size: [16, 16]}\ncrop: {mode: template}\n")
    pairs, _ = lfw_files(t / "in")
    d = protocols_copy(t / "in/protocols_all")
    shutil.copytree(t / "in/protocols/models", d / "models", dirs_exist_ok=True)
    os.environ["ARFACE_PROTOCOLS"] = str(d)
    with warnings.catch_warnings():  # torch.jit is deprecated, but TorchScript files exist
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(torch.nn.Flatten()).save(str(t / "in/m.pt"))
    image_folder(t / "in/img", 1, 1)
    return ["evaluate", "--protocol", "lfw", "--model", f"ts:{t / 'in/m.pt'}", "--data-root", str(t / "in/img"),
            "--pairs", str(pairs), "--out", str(t / "out/rec.json"), "--cache-dir", "none", "--workers", "0", "--quiet"]


@case("model-is-dev-zero", "not-a-regular-file", 2, ["/dev/zero", "character device", "model file"], ["out/f.npz"])
def _(t):
    return _onnx_embed(t, Path("/dev/zero"))


@case("model-is-a-fifo", "not-a-regular-file", 2, ["m.onnx", "FIFO", "model file"], ["out/f.npz"])
def _(t):
    return _onnx_embed(t, fifo(t / "in/m.onnx"))


ROUND3A_TIMEOUT_S = 120  # a case of this section that blocks (a FIFO opened for reading) fails instead of hanging
for _c in CASES:
    if _c.category in ("read-outside-model", "code-from-data", "unbounded-memory", "not-a-regular-file"):
        _c.timeout = ROUND3A_TIMEOUT_S


def test_onnx_fallback_without_onnxruntime_reads_external_data_only_inside_the_model(tmp_path, monkeypatch, capfd):
    """`onnx:` falls back to OpenCV when onnxruntime is absent: the same reader refuses data outside the model's
    folder there, and a model whose data lies inside it gives the features of the inline model."""
    import importlib.util

    from arface_repro.cli import main
    from arface_repro.data.face_datasets import read_image
    from arface_repro.io.feature_store import load_feature_store
    from arface_repro.models.backends import load_model

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    image_folder(tmp_path / "img", 2, 2)
    for location in ("../../../../../../../../etc/passwd", "/etc/passwd"):
        bad = onnx_with_external(tmp_path / "bad/m.onnx", location)
        assert main(["embed", "--model", f"onnx:{bad}", "--data-root", str(tmp_path / "img"),
                     "--out", str(tmp_path / "bad.npz"), "--workers", "0", "--quiet"]) == 2
        err = capfd.readouterr().err
        assert "m.onnx" in err and "only files inside" in err and "Traceback" not in err, err
        assert not (tmp_path / "bad.npz").exists()
    good = onnx_with_external(tmp_path / "good/m.onnx", "w.bin", tmp_path / "good/w.bin")
    model = load_model(f"onnx:{good}")
    assert model.kind == "opencv"  # the fallback path is the one under test
    assert main(["embed", "--model", f"onnx:{good}", "--data-root", str(tmp_path / "img"),
                 "--out", str(tmp_path / "f.npz"), "--workers", "0", "--quiet"]) == 0
    store = load_feature_store(tmp_path / "f.npz")
    imgs = np.stack([read_image(tmp_path / "img" / p) for p in store.paths.tolist()])
    monkeypatch.undo()
    inline = write(tmp_path / "inline.onnx", tiny_onnx_bytes())
    np.testing.assert_allclose(store.features, load_model(f"onnx:{inline}").embed(imgs), rtol=1e-5, atol=1e-6)


def test_reproduce_table_never_runs_torchscript_named_by_data_yaml(tmp_path, capsys):
    """DATA.yaml naming a torchscript: checkpoint is a one-line error (exit 2) before any work; the user's own
    --trust-torchscript lets the same file through the DATA.yaml check."""
    import torch

    from arface_repro.commands.paper import reproduce_table_main
    from arface_repro.paper.run_missing import load_data_spec

    with warnings.catch_warnings():  # torch.jit is deprecated, but TorchScript files exist
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(torch.nn.Flatten()).save(str(tmp_path / "m.pt"))
    data = write(tmp_path / "DATA.yaml", "checkpoints: {VI.arface: 'torchscript:m.pt'}\n")
    rc = reproduce_table_main(["6", "--run", "--data", str(data), "--runs-dir", str(tmp_path / "runs"),
                      "--tables-dir", str(tmp_path / "tables"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "DATA.yaml" in lines[0] and "TorchScript" in lines[0] and "--trust-torchscript" in lines[0], err
    assert not (tmp_path / "runs").exists()
    assert load_data_spec(data, trust_torchscript=True).checkpoints == {"r50full_arface_l9": f"torchscript:{tmp_path / 'm.pt'}"}


@pytest.mark.slow
def test_loader_workers_end_when_their_parent_is_killed(tmp_path):
    """SIGKILL of the process that iterates a package DataLoader (its worker_init_fn) ends its workers within
    seconds, even while they are busy in a long read (where PyTorch's own parent check does not run)."""
    import signal
    import subprocess
    import time

    script = ("import os, sys, time\n"
              "from torch.utils.data import DataLoader, Dataset\n"
              "from arface_repro.utils.worker_lifetime import worker_init\n"
              "class Slow(Dataset):\n"
              "    def __len__(self): return 100\n"
              "    def __getitem__(self, i):\n"
              "        open(os.path.join(sys.argv[1], str(os.getpid())), 'w').close()\n"
              "        time.sleep(120)\n"
              "        return i\n"
              "for _ in DataLoader(Slow(), num_workers=2, worker_init_fn=worker_init()):\n"
              "    pass\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(tmp_path.iterdir())) < 2:
        time.sleep(0.1)
    workers = [int(p.name) for p in tmp_path.iterdir()]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(workers) == 2, "the workers did not start"

    def running(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        return state not in ("Z", "X")  # a zombie has ended; only its parent (now init) has not reaped it yet

    deadline = time.time() + 10
    while time.time() < deadline and any(running(p) for p in workers):
        time.sleep(0.1)
    left = [p for p in workers if running(p)]
    for p in left:  # do not leave them behind when the test fails
        os.kill(p, signal.SIGKILL)
    assert not left, f"workers {left} outlived their killed parent"

# --- round 3, part B: strict types, duplicates, float32 ranges, atomic pairs, locks, tracebacks

# ---- strict types: .bin pair labels are True/False (or the integers 0/1) only

def _bin_with_label(label):
    def build(t):
        b = write(t / "in/l.bin", pickle.dumps(([jpeg(0), jpeg(1)], [label])))
        return ["evaluate", "--protocol", "bin", "--pairs", str(b), "--features", str(save_store(t / "in/s.npz", ["a"])),
                "--out", str(t / "out/rec.json")]
    return build


for _name, _label, _shown in [("text-False", "False", "'False'"), ("bytes-zero", b"\x00", "b'\\x00'"),
                              ("list", [1], "[1]"), ("two", 2, " 2 "), ("five", 5, " 5 "), ("one-and-a-half", 1.5, "1.5"),
                              ("float-one", 1.0, "1.0"), ("none", None, "None")]:
    CASES.append(Case(f"bin-label-{_name}", "strict-types", _bin_with_label(_label), 2,
                      ("l.bin", "pair 0", _shown, "True/False"), EVAL_OUT))


@case("bin-labels-float-array", "strict-types", 2, ["l.bin", "float64 array", "bool"], EVAL_OUT)
def _(t):
    b = write(t / "in/l.bin", pickle.dumps(([jpeg(0), jpeg(1)], np.array([1.0]))))
    return ["evaluate", "--protocol", "bin", "--pairs", str(b), "--features", str(save_store(t / "in/s.npz", ["a"])),
            "--out", str(t / "out/rec.json")]


@case("bin-labels-array-of-2", "strict-types", 2, ["l.bin", "pair 0", "label 2"], EVAL_OUT)
def _(t):
    b = write(t / "in/l.bin", pickle.dumps(([jpeg(0), jpeg(1)], np.array([2], np.int64))))
    return ["evaluate", "--protocol", "bin", "--pairs", str(b), "--features", str(save_store(t / "in/s.npz", ["a"])),
            "--out", str(t / "out/rec.json")]


# ---- duplicates and overlaps, refused per protocol with the protocol's reason

def _lfw_edit(edit):
    """lfw_files' pairs.txt (10 folds of 1 + 1) with `edit(lines)` applied to its lines (header at index 0)."""
    def build(t):
        pairs, store = lfw_files(t / "in")
        lines = pairs.read_text().splitlines()
        edit(lines)
        pairs.write_text("\n".join(lines) + "\n")
        return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs),
                "--out", str(t / "out/rec.json"), "--quiet"]
    return build


def _set(i, text):
    def edit(lines):
        lines[i] = text if not callable(text) else text(lines)
    return edit


CASES += [
    Case("lfw-duplicated-pair", "duplicates", _lfw_edit(_set(3, lambda ls: ls[1])), 2,
         ("pairs.txt:4", "repeats the pair of line 2", "count twice"), EVAL_OUT),
    Case("lfw-duplicated-pair-reversed", "duplicates",
         _lfw_edit(_set(4, lambda ls: "\t".join(ls[2].split("\t")[2:] + ls[2].split("\t")[:2]))), 2,
         ("pairs.txt:5", "repeats the pair of line 3"), EVAL_OUT),
    Case("lfw-mismatched-names-one-person", "duplicates", _lfw_edit(_set(2, "P0x0\t1\tP0x0\t2")), 2,
         ("pairs.txt:3", "names 'P0x0' on both sides", "two different people"), EVAL_OUT),
    Case("lfw-pair-names-one-image-twice", "duplicates", _lfw_edit(_set(1, "P0x0\t1\t1")), 2,
         ("pairs.txt:2", "names image P0x0/P0x0_0001.jpg twice"), EVAL_OUT),
]


@case("ytf-pair-names-one-video-twice", "duplicates", 2, ["splits.txt:21", "names video 'A0/0' twice"], EVAL_OUT)
def _(t):
    splits, store = ytf_files(t / "in", extra=["1, 21, A0/0, A0/0, 1"])
    return ["evaluate", "--protocol", "ytf", "--features", str(store), "--pairs", str(splits), "--out", str(t / "out/rec.json")]


def _ijb_case(**files):
    def build(t):
        meta, store = ijb_files(t / "in", **files)
        return ["evaluate", "--protocol", "ijbc", "--features", str(store), "--meta-dir", str(meta),
                "--out", str(t / "out/rec.json")]
    return build


_TID = "".join(f"{i}.jpg {i // 2} {i}\n" for i in range(8))
CASES += [
    Case("ijb-repeated-image-row", "duplicates", _ijb_case(tid_mid=_TID + "3.jpg 1 3\n"), 2,
         ("ijbc_face_tid_mid.txt:9", "repeats image '3.jpg' of line 4", "twice in its template"), EVAL_OUT),
    Case("ijb-repeated-template-pair", "duplicates", _ijb_case(pairs="0 1 1\n0 2 0\n1 3 0\n2 3 1\n0 2 0\n"), 2,
         ("ijbc_template_pair_label.txt", "line 5", "repeats the template pair (0, 2) of line 2", "counts twice"), EVAL_OUT),
    Case("ijb-reversed-template-pair", "duplicates", _ijb_case(pairs="0 1 1\n0 2 0\n1 3 0\n2 3 1\n1 0 1\n"), 2,
         ("line 5", "repeats the template pair (1, 0) of line 1"), EVAL_OUT),
    Case("ijb-template-paired-with-itself", "duplicates", _ijb_case(pairs="0 1 1\n0 2 0\n2 2 1\n2 3 1\n"), 2,
         ("ijbc_template_pair_label.txt", "line 3", "template 2 is paired with itself"), EVAL_OUT),
]


def _megaface_lists(fs_paths, mf_paths, ids=None):
    def build(t):
        write(t / "in/fs.json", json.dumps({"id": ids or [p.split("/")[0] for p in fs_paths], "path": fs_paths}))
        write(t / "in/mf.json", json.dumps({"path": mf_paths}))
        probes = save_store(t / "in/probes.npz", sorted(set(fs_paths)), seed=1)
        dis = save_store(t / "in/dis.npz", sorted({str(p) for p in mf_paths}), seed=2)
        return ["evaluate", "--protocol", "megaface", "--features", str(probes), "--distractor-features", str(dis),
                "--facescrub-list", str(t / "in/fs.json"), "--megaface-list", str(t / "in/mf.json"), "--noise-rule", "none",
                "--sizes", "2", "--out", str(t / "out/rec.json")]
    return build


CASES += [
    Case("megaface-probe-listed-twice", "duplicates",
         _megaface_lists(["p/1.jpg", "p/2.jpg", "q/1.jpg", "q/2.jpg", "p/1.jpg"], ["d/0.jpg", "d/1.jpg"]), 2,
         ("fs.json", "entry 4 repeats probe image 'p/1.jpg' (entry 0)", "scores each FaceScrub probe once"), EVAL_OUT),
    Case("megaface-id-not-a-string", "strict-types",
         _megaface_lists(["p/1.jpg", "p/2.jpg", "q/1.jpg", "q/2.jpg"], ["d/0.jpg", "d/1.jpg"], ids=[None, None, 3, 3]), 2,
         ("fs.json", "'id' entry 0 must be a non-empty string", "None"), EVAL_OUT),
    Case("megaface-path-not-a-string", "strict-types",
         _megaface_lists(["p/1.jpg", "p/2.jpg", "q/1.jpg", "q/2.jpg"], ["d/0.jpg", ["d/1.jpg"]]), 2,
         ("mf.json", "'path' entry 1 must be a non-empty string", "['d/1.jpg']"), EVAL_OUT),
    Case("megaface-distractor-listed-twice", "duplicates",
         _megaface_lists(["p/1.jpg", "p/2.jpg", "q/1.jpg", "q/2.jpg"], ["d/0.jpg", "d/1.jpg", "d/0.jpg"]), 2,
         ("mf.json", "entry 2 repeats distractor image 'd/0.jpg' (entry 0)"), EVAL_OUT),
]


def _blufr_case(**override):
    def build(t):
        mat, store = blufr_files(t / "in", **override)
        return ["evaluate", "--protocol", "blufr", "--features", str(store), "--config", str(mat),
                "--out", str(t / "out/rec.json")]
    return build


def _cell_edit(key, fn):
    def edit(cfg):
        c = cfg[key].copy()
        c[0, 0] = np.asarray(fn(c[0, 0].ravel(), cfg), np.float64).reshape(-1, 1)
        return c
    return edit


CASES += [
    Case("blufr-gallery-image-also-a-probe", "duplicates",
         _blufr_case(probIndex=_cell_edit("probIndex", lambda p, cfg: np.r_[p, cfg["galIndex"][0, 0].ravel()[:1]])), 2,
         ("trial 1", "in both galIndex{1} and probIndex{1}", "C0_0001.jpg", "disjoint probes"), EVAL_OUT),
    Case("blufr-test-index-not-gallery-and-probes", "duplicates",
         _blufr_case(testIndex=_cell_edit("testIndex", lambda x, cfg: x[:-1])), 2,
         ("trial 1", "testIndex{1} is not galIndex ∪ probIndex", "C7_0003.jpg"), EVAL_OUT),
]


# ---- float32 ranges: after preprocessing and on features

def _torch_embed(t, *extra):
    torch_file(t / "in/m.pth", tiny_state_dict())
    image_folder(t / "in/img", 1, 1)
    return ["embed", "--model", f"torch:tiny_resnet:{t / 'in/m.pth'}", "--data-root", str(t / "in/img"),
            "--out", str(t / "out/f.npz"), "--workers", "0", "--quiet", *extra]


CASES += [
    Case("embed-preprocess-std-1e39", "float32-range", lambda t: _torch_embed(t, "--preprocess", "std=1e39"), 2,
         ("preprocess std=1e+39", "float32"), ("out/f.npz",)),
    Case("embed-preprocess-std-1e-40", "float32-range", lambda t: _torch_embed(t, "--preprocess", "std=1e-40"), 2,
         ("preprocess std=1e-40", "float32's normal range"), ("out/f.npz",)),
    Case("embed-preprocess-mean-1e39", "float32-range", lambda t: _torch_embed(t, "--preprocess", "mean=1e39"), 2,
         ("preprocess mean=1e+39", "float32"), ("out/f.npz",)),
]


def _lfw_store_edit(fn):
    def build(t):
        pairs, store = lfw_files(t / "in")
        with np.load(store) as z:
            paths, f = z["paths"], z["features"]
        feats, flip = fn(f)
        save_store(store, paths.tolist(), features=feats, flip=flip)
        return ["evaluate", "--protocol", "lfw", "--features", str(store), "--pairs", str(pairs),
                "--out", str(t / "out/rec.json"), "--quiet"]
    return build


CASES += [
    Case("lfw-flip-is-minus-features", "float32-range", _lfw_store_edit(lambda f: (f, -f)), 2,
         ("lfw.npz", "features + flip_features row", "all zero", "cannot be L2-normalised"), EVAL_OUT),
    Case("lfw-rows-scaled-1e-25", "float32-range", _lfw_store_edit(lambda f: (f * np.float32(1e-25), None)), 2,
         ("lfw.npz", "features row for", "underflows float32", "cannot be L2-normalised"), EVAL_OUT),
    Case("lfw-flip-cancels-to-tiny", "float32-range",
         _lfw_store_edit(lambda f: (f * np.float32(1e-18), -f * np.float32(1e-18) + np.float32(1e-21))), 2,
         ("features + flip_features row", "too small to normalise in float32"), EVAL_OUT),
]


@case("trillion-rows-scaled-1e-25", "float32-range", 2, ["d.bin", "row 0", "too small to normalise in float32"], EVAL_OUT)
def _(t):
    rng = np.random.default_rng(0)
    probes = trillion_bin(t / "in/p.bin", rng.standard_normal((4, 8)))
    dis = trillion_bin(t / "in/d.bin", rng.standard_normal((6, 8)) * 1e-25)
    write(t / "in/labels.txt", "a\na\nb\nb\n")
    return ["evaluate", "--protocol", "trillion", "--features", str(probes), "--probe-labels", str(t / "in/labels.txt"),
            "--distractor-features", str(dis), "--out", str(t / "out/rec.json")]


@case("megaface-devkit-feature-1e-25", "float32-range", 2, ["x.jpg_a.bin", "too small to normalise in float32"], EVAL_OUT)
def _(t):
    write(t / "in/fs.json", '{"id": ["p", "p"], "path": ["p/x.jpg", "p/y.jpg"]}')
    write(t / "in/mf.json", '{"path": ["d/0.jpg"]}')
    for name, scale in (("p/x.jpg", 1e-25), ("p/y.jpg", 1.0)):
        write(t / f"in/fsf/{name}_a.bin", struct.pack("<4i", 4, 1, 4, 5) + (np.ones(4, "<f4") * np.float32(scale)).tobytes())
    write(t / "in/mff/d/0.jpg_a.bin", struct.pack("<4i", 4, 1, 4, 5) + np.ones(4, "<f4").tobytes())
    return ["evaluate", "--protocol", "megaface", "--facescrub-dir", str(t / "in/fsf"), "--megaface-dir", str(t / "in/mff"),
            "--algo", "a", "--facescrub-list", str(t / "in/fs.json"), "--megaface-list", str(t / "in/mf.json"),
            "--noise-rule", "none", "--sizes", "1", "--out", str(t / "out/rec.json")]


@case("ijb-flip-is-minus-features", "float32-range", 2, ["ijbc.npz", "features + flip_features row", "all zero"], EVAL_OUT)
def _(t):
    meta, store = ijb_files(t / "in")
    with np.load(store) as z:
        paths, f = z["paths"], z["features"]
    save_store(store, paths.tolist(), features=f, flip=-f)
    return ["evaluate", "--protocol", "ijbc", "--features", str(store), "--meta-dir", str(meta), "--out", str(t / "out/rec.json")]


# ---- atomic paired outputs: a rerun over a record and its sidecar leaves the two consistent

def _check_pair_consistent(t, out, err):
    from arface_repro.io.records import load_record, load_sidecar

    rec = load_record(t / "out/rec.json")
    rec["_path"] = str(t / "out/rec.json")
    assert load_sidecar(rec)["scores"].size == 20  # the sha256 the record names is the sidecar beside it
    assert not list((t / "out").glob(".*"))


@case("record-rewritten-over-old-pair", "atomic-pairs", 0, check=_check_pair_consistent)
def _(t):
    from arface_repro.io.records import build_record, write_record

    write_record(build_record("lfw", "insightface", {"Acc": 1.0}), t / "out/rec.json", arrays={"scores": np.zeros(3)})
    return lfw_eval(t)


# ---- one training run per output folder

_HELD: list = []


def _release_held(*_):
    while _HELD:
        _HELD.pop().release()


@case("train-into-a-held-folder", "locks", 2, ["out/run", "another arface train is writing to this folder", "pid"],
      ["out/run/metrics.jsonl", "out/run/checkpoint_last.pt"], check=_release_held)
def _(t):
    from arface_repro.utils.folder_lock import FolderLock

    _release_held()
    _HELD.append(FolderLock(t / "out/run", "arface train").acquire())  # another run holds the folder
    return ["train", str(_train_cfg(t)), *TRAIN_TINY, "--out-dir", str(t / "out/run"), "--quiet"]


# ---- EXIF orientation: ignored by every reader (an aligned crop is read as stored)

def _exif_rotated_jpeg(h: int = 112, w: int = 96) -> bytes:
    import io

    from PIL import Image

    rng = np.random.default_rng(5)
    im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def _check_one_row(t, out, err):
    from arface_repro.io.feature_store import load_feature_store

    assert len(load_feature_store(t / "out/f.npz")) == 1


@case("embed-exif-rotated-aligned-crop", "exif-orientation", 0, check=_check_one_row)
def _(t):
    # a 112×96 crop tagged to rotate: read as stored it pads to 112×112; rotated (96×112) it could not be padded
    torch_file(t / "in/m.pth", tiny_state_dict())
    write(t / "in/img/a/0001.jpg", _exif_rotated_jpeg())
    return ["embed", "--model", f"torch:tiny_resnet:{t / 'in/m.pth'}", "--data-root", str(t / "in/img"),
            "--out", str(t / "out/f.npz"), "--workers", "0", "--quiet", "--no-flip"]


@case("pack-rec-exif-rotated-crop", "exif-orientation", 0, check=lambda t, o, e: None)
def _(t):
    write(t / "in/f/a/0001.jpg", _exif_rotated_jpeg())
    write(t / "in/f/b/0001.jpg", _exif_rotated_jpeg())
    return ["pack-rec", str(t / "in/f"), str(t / "out/o"), "--quiet"]


# ---- tracebacks turned into one line

def _train_with(*overrides, env=None):
    def build(t):
        return ["train", str(_train_cfg(t)), *TRAIN_TINY, *overrides, "--out-dir", str(t / "out/run"), "--quiet"]
    return build


_TRAIN_OUT = ("out/run/metrics.jsonl", "out/run/checkpoint_last.pt")
CASES += [
    Case("train-device-cuda-99", "tracebacks", _train_with("train.device=cuda:99"), 2, ("train.device", "cuda:99"), _TRAIN_OUT),
    Case("train-batch-size-1", "tracebacks", _train_with("train.batch_size=1"), 2,
         ("train.batch_size=1", "batch normalisation needs at least 2 images per process"), _TRAIN_OUT),
    Case("train-lr-1e308", "tracebacks", _train_with("train.lr=1e308"), 2, ("train.lr", "float32"), _TRAIN_OUT),
    Case("train-batch-size-2-64", "tracebacks", _train_with(f"train.batch_size={2 ** 64}"), 2, ("train.batch_size",),
         _TRAIN_OUT),
    Case("train-world-size-abc", "tracebacks", _train_with(), 2, ("WORLD_SIZE='abc'", "not an integer"), _TRAIN_OUT,
         env={"WORLD_SIZE": "abc"}),
    Case("train-rank-beyond-world", "tracebacks", _train_with(), 2, ("RANK=5", "below WORLD_SIZE=2"), _TRAIN_OUT,
         env={"WORLD_SIZE": "2", "RANK": "5", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}),
    Case("evaluate-world-size-abc", "tracebacks", lambda t: _megaface_lists(["p/1.jpg", "p/2.jpg"], ["d/0.jpg"])(t), 2,
         ("WORLD_SIZE='abc'", "not an integer"), EVAL_OUT, env={"WORLD_SIZE": "abc"}),
    Case("embed-device-cuda-99", "tracebacks", lambda t: _torch_embed(t, "--device", "cuda:99"), 2,
         ("--device cuda:99",), ("out/f.npz",)),
    Case("embed-device-garbage", "tracebacks", lambda t: _torch_embed(t, "--device", "gpu-please"), 2,
         ("--device 'gpu-please'", "not a device name"), ("out/f.npz",)),
    Case("evaluate-device-cuda-99", "tracebacks", lambda t: _lfw_model(t) + ["--device", "cuda:99"], 2,
         ("--device cuda:99",), EVAL_OUT),
    Case("plugin-empty-name", "tracebacks", lambda t: ["--plugin", "", "list-models"], 2,
         ("--plugin ''", "not a module name")),
    Case("plugin-relative-name", "tracebacks", lambda t: ["--plugin", ".models", "list-models"], 2,
         ("--plugin '.models'", "not a module name")),
    Case("embed-batch-size-2-64", "tracebacks", lambda t: _torch_embed(t, "--batch-size", str(2 ** 64)), 2,
         ("--batch-size", "1..65536"), ("out/f.npz",)),
    Case("evaluate-batch-size-2-64", "tracebacks", lambda t: _lfw_model(t) + ["--batch-size", str(2 ** 64)], 2,
         ("--batch-size", "1..65536"), EVAL_OUT),
]

# covered outside this table (they need a process, a signal or a failing write): a failure or a kill between the
# two renames of a paired output (tests/test_paired_outputs.py), a full disk during train
# (tests/test_train_disk_full.py), a second live `arface train` process (tests/test_train_lock.py), a
# read-only or full --tables-dir and Ctrl-C in reproduce_table.py (tests/test_reproduce_table_errors.py)
ROUND3_B_FAMILIES = ("strict-types", "duplicates", "float32-range", "atomic-pairs", "locks", "exif-orientation",
                     "tracebacks")


def test_round3_part_b_families_are_in_the_table():
    by_cat = Counter(c.category for c in CASES)
    assert all(by_cat[f] > 0 for f in ROUND3_B_FAMILIES), {f: by_cat[f] for f in ROUND3_B_FAMILIES}


# ------------------------------------------------------------------------------------------- the runner

def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_dir():
            out[rel] = "dir"
        elif not p.is_file():  # a FIFO or device planted as input: never read here (it would block)
            out[rel] = f"special:{p.stat().st_mode:o}"
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _leftover_temps(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in root.rglob(".*.tmp*")] + \
           [p.relative_to(root).as_posix() for p in root.rglob(".arface-write-probe-*")]


class CaseHung(BaseException):
    """Raised by SIGALRM in a case with a `timeout` (a BaseException: no `except Exception` in the package
    turns it into an ordinary error)."""


def _hung(signum, frame):
    raise CaseHung()


def run_case(c: Case, tmp: Path, capfd) -> tuple[int, str, str]:
    """Build the case's inputs under tmp/in, run the CLI in tmp, return (status, stdout, stderr).

    Output is captured at the file-descriptor level (native libraries such as OpenCV write there too), and
    warnings as a user sees them (Python's default filters: UserWarning, RuntimeWarning, FutureWarning shown;
    DeprecationWarning, ResourceWarning and the like hidden) are added to stderr."""
    from arface_repro.cli import main

    (tmp / "in").mkdir()
    (tmp / "out").mkdir()
    argv = [str(a) for a in c.build(tmp)]
    before = _snapshot(tmp / "in")
    capfd.readouterr()
    saved_env = {k: os.environ.get(k) for k in c.env}  # a case's environment (launcher variables), for this run only
    os.environ.update(c.env)
    with _restored_env(saved_env), warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")
        warnings.simplefilter("ignore", DeprecationWarning)
        for hidden in (PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", hidden)
        timeout = getattr(c, "timeout", None)
        if timeout:
            import signal

            previous = signal.signal(signal.SIGALRM, _hung)
            signal.alarm(timeout)
        try:
            rc = main(argv)
        except CaseHung:
            pytest.fail(f"{c.name}: still running after {timeout} s (blocked on a read, or unbounded work)")
        except SystemExit as exc:  # argparse: usage + one error line, status 2
            rc = exc.code if isinstance(exc.code, int) else 2
        except Exception as exc:  # noqa: BLE001 - an escaping exception is the failure this suite looks for
            import traceback

            pytest.fail(f"{c.name}: {type(exc).__name__} escaped the CLI (a traceback for the user):\n"
                        f"{''.join(traceback.format_exception(exc))}\nstderr: {capfd.readouterr().err}")
        finally:
            if timeout:
                signal.alarm(0)
                signal.signal(signal.SIGALRM, previous)
    got = capfd.readouterr()
    err = got.err + "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in shown)
    after = _snapshot(tmp / "in")
    assert after == before, f"{c.name}: the inputs changed: " \
        f"{sorted(set(before.items()) ^ set(after.items()))[:6]}"
    return rc, got.out, err


@contextlib.contextmanager
def _restored_env(saved: dict):
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARFACE_PROTOCOLS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield tmp_path
    os.environ.pop("ARFACE_PROTOCOLS", None)


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("c", CASES, ids=[c.name for c in CASES])
def test_bad_input(c: Case, isolated, capfd):
    t = isolated
    rc, out, err = run_case(c, t, capfd)
    both = out + err
    assert "Traceback" not in both, f"{c.name}: a traceback was printed:\n{both}"
    for advice in ("weights_only=False", "set to `False`", "TRUST_PICKLE", "allow_pickle=True"):
        assert advice not in both, f"{c.name}: unsafe advice ({advice}):\n{both}"
    assert not (t / MARKER).exists(), f"{c.name}: the payload ran"
    assert rc == c.rc, f"{c.name}: exit status {rc}, expected {c.rc}\nstdout: {out}\nstderr: {err}"
    if c.rc == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("arface") and ": error: " in ln]
        # one line `arface CMD: error: ...`; argparse (a bad option value) prints its usage before that line
        assert len(errors) == 1 and lines[-1] == errors[0] and (len(lines) == 1 or lines[0].startswith("usage:")), \
            f"{c.name}: expected one error line (after argparse's usage for a bad option), got:\n{err}"
        text = err
    else:
        text = both
    for w in c.words:
        assert w in text, f"{c.name}: {w!r} not in the message:\n{text}"
    for rel in c.absent:
        assert not (t / rel).exists(), f"{c.name}: {rel} was written"
    assert not _leftover_temps(t), f"{c.name}: temp files left: {_leftover_temps(t)}"
    if c.check is not None:
        c.check(t, out, err)


def test_table_is_well_formed():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), [n for n, k in Counter(names).items() if k > 1]
    for c in CASES:
        assert c.rc in (0, 1, 2) and (c.rc == 0 or c.words), c.name


# ------------------------------------------------------------------------------------------- pack-rec killed

def _stale_temp(folder: Path, name: str) -> Path:
    """A temp file as a killed writer on this host leaves it (its pid no longer runs)."""
    import subprocess

    from arface_repro.utils import atomic

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    p = folder / f".{name}.{atomic._HOST}-{dead.pid}.abc123.tmp{Path(name).suffix}"
    p.write_bytes(b"\0" * 1000)
    return p


def test_pack_rec_removes_a_killed_run_s_temp_files_and_keeps_live_ones(tmp_path, capsys):
    from arface_repro.cli import main
    from arface_repro.utils import atomic

    image_folder(tmp_path / "f")
    out = tmp_path / "out"
    out.mkdir()
    stale = [_stale_temp(out, "train.rec"), _stale_temp(out, "train.idx")]
    live = out / f".train.rec.{atomic._HOST}-{os.getpid()}.zzz.tmp.rec"  # a writer that still runs: kept
    live.write_bytes(b"x")
    other_host = out / ".train.rec.otherhost-1.zzz.tmp.rec"  # another machine's writer: kept
    other_host.write_bytes(b"x")
    assert main(["pack-rec", str(tmp_path / "f"), str(out / "train"), "--quiet"]) == 0
    assert not any(p.exists() for p in stale)
    assert live.exists() and other_host.exists()
    assert (out / "train.rec").stat().st_size > 0


def test_pack_rec_killed_mid_write_then_rerun_leaves_no_temp_file(tmp_path):
    """A real SIGKILL in the middle of writing: the next run removes what the killed one left."""
    import signal
    import subprocess
    import time

    image_folder(tmp_path / "f", identities=3, per=3)
    out = tmp_path / "o"
    script = ("import sys, time\n"
              "import arface_repro.data.rec_writer as rw\n"
              "orig = rw.jpeg_payload\n"
              "def slow(*a, **k):\n"
              "    time.sleep(0.5)\n"
              "    return orig(*a, **k)\n"
              "rw.jpeg_payload = slow\n"
              "from arface_repro.cli import main\n"
              f"main(['pack-rec', {str(tmp_path / 'f')!r}, {str(out / 'train')!r}, '--quiet'])\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.glob(".train.rec.*.tmp.rec")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = list(out.glob(".train.*.tmp*"))
    assert left, "the killed run should have left its temp files (the case this test is about)"
    assert not (out / "train.rec").exists()
    from arface_repro.cli import main

    assert main(["pack-rec", str(tmp_path / "f"), str(out / "train"), "--quiet"]) == 0
    assert not list(out.glob(".train.*.tmp*")), list(out.glob(".*"))


# ------------------------------------------------------------------------------------------- counts

def summary() -> str:
    by_rc = Counter(c.rc for c in CASES)
    by_cat = Counter(c.category for c in CASES)
    errors_by_cat = Counter(c.category for c in CASES if c.rc != 0)
    lines = [f"{len(CASES)} cases: {by_rc[2]} refused with a one-line error (exit 2), {by_rc[1]} reported by "
             f"inspect-rec (exit 1), {by_rc[0]} handled correctly (exit 0)", "by category (cases / expected errors):"]
    lines += [f"  {k:<22} {v:>3} / {errors_by_cat[k]}" for k, v in sorted(by_cat.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)


def test_counts_cover_every_kind_of_hole(capsys):
    """Every case has a known outcome, and the table covers each kind of hole the suite exists for."""
    assert {c.rc for c in CASES} <= {0, 1, 2}
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), "two cases share a name"
    by_cat = Counter(c.category for c in CASES)
    for cat in ("code-execution", "wrong-result", "output-over-input", "fold-structure", "corrupt-file",
                "text-encoding", "path-traversal", "bad-output-location", "bad-number", "config-validation",
                "read-outside-model", "code-from-data", "unbounded-memory", "not-a-regular-file"):
        assert by_cat[cat] > 0, f"no case of category {cat!r}"
    text = summary()
    assert text.startswith(f"{len(CASES)} cases: {sum(c.rc == 2 for c in CASES)} refused")
    with capsys.disabled():
        print("\nbad-input suite: " + text)


if __name__ == "__main__":
    print(summary())
