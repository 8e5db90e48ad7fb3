"""Test helper: a real LFW feature store from the shared ONNX MobileFaceNet, run directly with onnxruntime.

Kept independent of the package's model layer on purpose, so evaluation tests check the protocols
against an embedding pipeline written separately. Stores are cached per test session in a temp dir.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def embed_lfw(shared: Path, rel_paths: list[str]) -> np.ndarray:
    import cv2
    import onnxruntime as ort

    model = shared / "models" / "mobilefacenet-expo" / "MobileFaceNet.onnx"
    root = shared / "data" / "lfw" / "aligned-112x96"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    batch = 2  # the shared model has a fixed batch of 2
    out = np.zeros((len(rel_paths), 192), np.float32)
    imgs = np.zeros((batch, 3, 112, 112), np.float32)
    for s in range(0, len(rel_paths), batch):
        chunk = rel_paths[s:s + batch]
        imgs[:] = 0
        for k, p in enumerate(chunk):
            bgr = cv2.imread(str(root / p))
            if bgr is None:
                raise FileNotFoundError(root / p)
            rgb = np.pad(bgr[:, :, ::-1], ((0, 0), (8, 8), (0, 0)))
            imgs[k] = ((rgb.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)
        out[s:s + len(chunk)] = sess.run(None, {name: imgs})[0][: len(chunk)]
    return out
