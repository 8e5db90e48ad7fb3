"""`TorchModel`: an `EmbeddingModel` over an in-memory `torch.nn.Module` taking N×3×H×W.

The kinds that end in a PyTorch network use it: `torch:` (a registry architecture + checkpoint), `torchscript:`,
`caffe:` and `tfgraph:` (networks the package builds from those files), presets of those, and in-memory modules
(`TorchModel.from_module`, e.g. during training).
"""

from __future__ import annotations

import numpy as np

from arface_repro.backbones.state_dict import state_dict_sha256
from arface_repro.errors import ConfigError
from arface_repro.models.embedding_model import EmbeddingModel, resolve_device
from arface_repro.models.preprocess import GENERIC, Preprocess


class TorchModel(EmbeddingModel):
    kind = "torch"

    def __init__(self, module, spec: str, preprocess: Preprocess, file_sha256: str, device=None):
        self.device = resolve_device(device)
        self.module = module.to(self.device)
        super().__init__(spec, preprocess, file_sha256, embedding_size=getattr(module, "embedding_size", None))

    @classmethod
    def from_module(cls, module, name: str = "module", preprocess: Preprocess | None = None, device=None) -> TorchModel:
        """Wrap an in-memory nn.Module (e.g. during training; it is moved to `device`, run in eval mode and left
        in the mode it had). Its `file_sha256` is the hash of its state dict at wrapping time."""
        h = state_dict_sha256(module.state_dict())
        return cls(module, f"torch-module:{name}", preprocess or GENERIC, h, device)

    def _run(self, x: np.ndarray) -> np.ndarray:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(self.device)
        was_training = self.module.training
        self.module.eval()  # BN running statistics, no dropout; a training module gets its mode back below
        try:
            with torch.inference_mode():
                out = self.module(t)
        except RuntimeError as exc:
            raise ConfigError(f"{self.spec}: the network failed on input {tuple(t.shape)} (N×C×H×W): "
                              f"{str(exc).splitlines()[0]}") from exc
        finally:
            self.module.train(was_training)
        if isinstance(out, (tuple, list)):  # e.g. AdaFace returns (embedding, norm): the embedding is first
            out = out[0]
        return out.float().cpu().numpy()
