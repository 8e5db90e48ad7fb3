"""Make the test fixture tests/fixtures/facenet_opencv4_reference.npz: OpenCV 4's embeddings of real LFW crops
through the shared facenet graph, the reference the package's GraphDef runner (`tfgraph:`) is tested against.

Steps (the first and last with this package, in its environment):
  1. four deep-funneled LFW fold-1 images -> the package's MTCNN -> facenet box crops (margin 32, 160×160
     uint8), then the preset facenet-20180408's preprocessing (RGB, (x − 127.5)/128) -> float32 N×160×160×3;
  2. a second Python that has an OpenCV 4.x with `cv2.dnn.readNetFromTensorflow` (a throw-away venv:
     `python3 -m venv /tmp/cv4 && /tmp/cv4/bin/pip install "opencv-python-headless==4.8.1.78" "numpy<2"`) runs the
     graph on each input (N×C×H×W blob, one image at a time as the graph declares batch 1);
  3. the fixture keeps the uint8 crops, their image names, the raw OpenCV outputs, the OpenCV version and
     the graph's sha256 (the test checks it runs the same graph).

    python scripts/make_tfgraph_reference.py --opencv4-python /tmp/cv4/bin/python [--shared DIR] [--out F.npz]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

IMAGES = ("Abel_Pacheco/Abel_Pacheco_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0004.jpg",
          "Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg", "Abdul_Rahman/Abdul_Rahman_0001.jpg")
GRAPH = Path("models/facenet-20180408-opencv/graph_final.pb")

# run by the OpenCV-4 interpreter: argv = graph, inputs .npy (N×H×W×C float32), outputs .npy, info .json
OPENCV_STEP = """
import json, sys
import cv2, numpy as np
graph, src, dst, info = sys.argv[1:5]
cv2.setNumThreads(1)
net = cv2.dnn.readNetFromTensorflow(graph)
x = np.load(src)
out = []
for i in range(len(x)):
    net.setInput(np.ascontiguousarray(x[i:i + 1].transpose(0, 3, 1, 2), dtype=np.float32))
    out.append(np.asarray(net.forward(), dtype=np.float32).reshape(1, -1))
np.save(dst, np.concatenate(out))
json.dump({"opencv": cv2.__version__, "numpy": np.__version__}, open(info, "w"))
"""


def main(argv=None) -> int:
    from arface_repro.data.box_crop import box_crop
    from arface_repro.data.face_datasets import read_image
    from arface_repro.data.mtcnn import MTCNN, select_main_face
    from arface_repro.models.presets import load_preset
    from arface_repro.shared_data import shared_dir
    from arface_repro.utils.atomic import atomic_path
    from arface_repro.utils.hashing import sha256_file

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--opencv4-python", required=True, help="a Python whose cv2 has dnn.readNetFromTensorflow")
    ap.add_argument("--shared", type=Path, default=None, help="the shared data folder (default: ../shared)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests" / "fixtures"
                    / "facenet_opencv4_reference.npz")
    args = ap.parse_args(argv)
    shared = args.shared or shared_dir()
    if shared is None:
        raise SystemExit("no shared data folder (give --shared DIR or set ARFACE_SHARED)")
    graph = shared / GRAPH
    detector = MTCNN(shared / "models" / "mtcnn-facenet-pytorch", device="cpu")
    crops = []
    for rel in IMAGES:
        img = read_image(shared / "data" / "lfw" / "deepfunneled-fold1" / rel)
        boxes, _, _ = detector.detect(img)
        if not len(boxes):
            raise SystemExit(f"{rel}: no face detected")
        k = select_main_face(boxes, img.shape) if len(boxes) > 1 else 0
        crops.append(box_crop(img, boxes[k], 32, (160, 160))[0])
    crops = np.stack(crops)
    pre = load_preset("facenet-20180408").preprocess()
    x = pre(crops, name="reference crops")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst, info = Path(tmp) / "x.npy", Path(tmp) / "y.npy", Path(tmp) / "info.json"
        np.save(src, x)
        subprocess.run([args.opencv4_python, "-c", OPENCV_STEP, str(graph), str(src), str(dst), str(info)],
                       check=True)
        features = np.load(dst)
        versions = json.loads(info.read_text())
    with atomic_path(args.out) as tmp_out:
        np.savez_compressed(tmp_out, crops=crops, names=np.array(IMAGES), features=features,
                            opencv=np.array(versions["opencv"]), graph_sha256=np.array(sha256_file(graph)),
                            preprocess=np.array(pre.key()))
    print(f"{args.out}: {len(crops)} crops, features {features.shape}, OpenCV {versions['opencv']}, "
          f"{args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
