"""MTCNN face detector (Zhang et al. 2016) in PyTorch: P-Net, R-Net, O-Net cascade with 5 landmarks.

Loads the facenet-pytorch state dicts (`pnet.pt`, `rnet.pt`, `onet.pt`) from a directory given by the
user; nothing is downloaded. Those weights come from the original Caffe models, which were trained on
transposed images: the conversion folded the transpose into the convolution kernels, and the dense layers
expect the conv features flattened in (W, H, C) order, hence the `permute(0, 3, 2, 1)` before them.

The cascade follows the original MATLAB release: image pyramid (min face 20 px, factor 0.709), P-Net
proposals (NMS 0.5 per scale, 0.7 over scales), box regression, squaring, zero-padded crops re-scored by
R-Net (24 px) and O-Net (48 px) with thresholds [0.6, 0.7, 0.7], final NMS 0.7 by the smaller area.
Box coordinates inside the cascade are 1-based inclusive like the original; the outputs are 0-based
pixel coordinates (boxes x1, y1, x2, y2; landmarks x, y).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.utils.devices import check_device
from arface_repro.utils.safe_load import torch_load_safe


class PNet(nn.Module):
    """Proposal net: fully convolutional, 12×12 receptive field, stride 2."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)  # face / not face
        self.conv4_2 = nn.Conv2d(32, 4, 1)  # box regression

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return torch.softmax(self.conv4_1(x), dim=1), self.conv4_2(x)


class RNet(nn.Module):
    """Refinement net on 24×24 crops."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return torch.softmax(self.dense5_1(x), dim=1), self.dense5_2(x)


class ONet(nn.Module):
    """Output net on 48×48 crops: score, box regression and 5 landmarks (x1..x5, y1..y5, box-relative)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))
        return torch.softmax(self.dense6_1(x), dim=1), self.dense6_2(x), self.dense6_3(x)


# ------------------------------------------------------------------------------------------ box helpers
def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression on 1-based inclusive boxes; returns kept indices, best first.

    mode 'union': overlap = intersection / union; 'min': intersection / smaller area.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores, kind="stable")[::-1]
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = iw * ih
        if mode == "min":
            overlap = inter / np.minimum(area[i], area[rest])
        else:
            overlap = inter / (area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def regress_boxes(boxes: np.ndarray, reg: np.ndarray, plus_one: bool = True) -> np.ndarray:
    """Shift box corners by the nets' regression offsets (fractions of the box size)."""
    w = boxes[:, 2] - boxes[:, 0] + (1 if plus_one else 0)
    h = boxes[:, 3] - boxes[:, 1] + (1 if plus_one else 0)
    out = boxes.copy()
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def square_boxes(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (side = the longer side)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def crop_boxes(img: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Cut integer 1-based inclusive boxes out of `img` (zero outside it) and resize each to size×size."""
    import cv2

    h, w = img.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), dtype=np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(np.int64)):
        bw, bh = x2 - x1 + 1, y2 - y1 + 1
        if bw <= 0 or bh <= 0:
            continue
        patch = np.zeros((bh, bw, 3), dtype=np.uint8)
        sx1, sy1 = max(x1, 1), max(y1, 1)  # clipped source region, 1-based inclusive
        sx2, sy2 = min(x2, w), min(y2, h)
        if sx2 >= sx1 and sy2 >= sy1:
            patch[sy1 - y1 : sy2 - y1 + 1, sx1 - x1 : sx2 - x1 + 1] = img[sy1 - 1 : sy2, sx1 - 1 : sx2]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


def select_main_face(boxes: np.ndarray, image_shape) -> int:
    """Index of the face to keep when several are found: large and central.

    Score = box area − 2 × squared distance (px²) from the box centre to the image centre.
    """
    h, w = image_shape[:2]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 - w / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 - h / 2
    return int(np.argmax(area - 2.0 * (cx**2 + cy**2)))


# ------------------------------------------------------------------------------------------ detector
class MTCNN:
    """Three-stage MTCNN detector. `detect(img)` -> (boxes N×4, probs N, landmarks N×5×2), best first."""

    def __init__(
        self,
        weights_dir: str | os.PathLike,
        device: str | torch.device | None = None,
        min_face_size: int = 20,
        factor: float = 0.709,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
    ):
        weights_dir = Path(weights_dir)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = check_device(device)
        self.min_face_size, self.factor, self.thresholds = min_face_size, factor, tuple(thresholds)
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        for name, net in (("pnet", self.pnet), ("rnet", self.rnet), ("onet", self.onet)):
            path = weights_dir / f"{name}.pt"
            if not path.is_file():
                raise MissingDataError(f"MTCNN weights {path} not found (expected pnet.pt, rnet.pt, onet.pt)")
            state = torch_load_safe(path, "MTCNN weights file")  # weights_only=True, one-line errors
            if not isinstance(state, dict):
                raise FormatError(f"{path}: MTCNN weights file holds a {type(state).__name__}, expected a state dict")
            try:
                net.load_state_dict(state)
            except (RuntimeError, TypeError, ValueError) as exc:
                msg = " ".join(str(exc).split())
                raise FormatError(f"{path}: not the {name} of MTCNN (facenet-pytorch layout): {msg[:200]}") from None
            net.to(self.device).eval()

    def _to_tensor(self, images: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float()
        return (x - 127.5) * 0.0078125

    def _scales(self, h: int, w: int) -> list[float]:
        m = 12.0 / self.min_face_size
        minl = min(h, w) * m
        scales: list[float] = []
        while minl >= 12:
            scales.append(m * self.factor ** len(scales))
            minl *= self.factor
        return scales

    def _stage1(self, img: np.ndarray) -> np.ndarray:
        import cv2

        h, w = img.shape[:2]
        found = []
        for scale in self._scales(h, w):
            hs, ws = int(h * scale + 1), int(w * scale + 1)
            resized = cv2.resize(img, (ws, hs), interpolation=cv2.INTER_AREA)
            prob, reg = self.pnet(self._to_tensor(resized[None]))
            prob = prob[0, 1].cpu().numpy()
            reg = reg[0].cpu().numpy()
            rows, cols = np.nonzero(prob >= self.thresholds[0])
            if rows.size == 0:
                continue
            # 12×12 window of each output cell, mapped back to the image (1-based inclusive)
            x1 = np.floor((2.0 * cols + 1) / scale)
            y1 = np.floor((2.0 * rows + 1) / scale)
            x2 = np.floor((2.0 * cols + 12) / scale)
            y2 = np.floor((2.0 * rows + 12) / scale)
            cand = np.column_stack([x1, y1, x2, y2, prob[rows, cols], reg[:, rows, cols].T])
            found.append(cand[nms(cand[:, :4], cand[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5))
        boxes = np.concatenate(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        out = regress_boxes(boxes[:, :4], boxes[:, 5:9], plus_one=False)
        return np.column_stack([square_boxes(out), boxes[:, 4]])

    @torch.inference_mode()
    def detect(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect faces in an RGB uint8 H×W×3 image.

        Returns boxes (N, 4) float32 [x1, y1, x2, y2], probs (N,) float32 and landmarks (N, 5, 2)
        float32 (left eye, right eye, nose, left mouth corner, right mouth corner), sorted by prob.
        """
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 H×W×3 image, got {img.dtype} {img.shape}")
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
        boxes = self._stage1(img)
        if len(boxes) == 0:
            return empty
        # stage 2: R-Net
        boxes[:, :4] = np.trunc(boxes[:, :4])
        prob, reg = self.rnet(self._to_tensor(crop_boxes(img, boxes[:, :4], 24)))
        score, reg = prob[:, 1].cpu().numpy(), reg.cpu().numpy()
        keep = score > self.thresholds[1]
        boxes, score, reg = boxes[keep], score[keep], reg[keep]
        if len(boxes) == 0:
            return empty
        boxes[:, 4] = score
        pick = nms(boxes[:, :4], score, 0.7)
        boxes, reg = boxes[pick], reg[pick]
        boxes = np.column_stack([square_boxes(regress_boxes(boxes[:, :4], reg)), boxes[:, 4]])
        # stage 3: O-Net
        boxes[:, :4] = np.trunc(boxes[:, :4])
        prob, reg, pts = self.onet(self._to_tensor(crop_boxes(img, boxes[:, :4], 48)))
        score, reg, pts = prob[:, 1].cpu().numpy(), reg.cpu().numpy(), pts.cpu().numpy()
        keep = score > self.thresholds[2]
        boxes, score, reg, pts = boxes[keep], score[keep], reg[keep], pts[keep]
        if len(boxes) == 0:
            return empty
        bw = boxes[:, 2] - boxes[:, 0] + 1
        bh = boxes[:, 3] - boxes[:, 1] + 1
        lx = bw[:, None] * pts[:, :5] + boxes[:, 0:1] - 1  # 0-based pixel coordinates
        ly = bh[:, None] * pts[:, 5:] + boxes[:, 1:2] - 1
        boxes = regress_boxes(boxes[:, :4], reg)
        pick = nms(boxes, score, 0.7, mode="min")
        out_boxes = boxes[pick] - np.array([1.0, 1.0, 0.0, 0.0])  # 1-based inclusive -> 0-based edges
        landmarks = np.stack([lx[pick], ly[pick]], axis=-1)
        return out_boxes.astype(np.float32), score[pick].astype(np.float32), landmarks.astype(np.float32)
