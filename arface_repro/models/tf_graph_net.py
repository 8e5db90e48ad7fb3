"""TensorFlow frozen graphs (`.pb`) run in PyTorch, without TensorFlow or OpenCV's importer (model kind 'tfgraph').

OpenCV 5 removed `cv2.dnn.readNetFromTensorflow`, yet facenet's released models are frozen GraphDefs.
`tf_graphdef` reads and checks the file, `tf_ops` implements the ops with TensorFlow's semantics; this
module wires them into an nn.Module and an EmbeddingModel:

- specs: `tfgraph:MODEL.pb`; `opencv:MODEL.pb` on an OpenCV without the TensorFlow importer
  (the `opencv:` kind, `models.kinds.opencv`); a preset with `backend: opencv` (e.g. `facenet-20180408:graph.pb`)
  through the latter. The model's `kind` is 'tfgraph' and its identity's `engine` 'tfgraph-torch-VERSION'
  whichever spec loaded it, so records and caches say which engine computed the features.
- input: the graph's single Placeholder (float32, N×H×W×C as TensorFlow feeds it); its declared H×W is the
  network's input size (else the preprocessing must give it), 3 channels. A declared batch size is
  respected as TensorFlow does (a graph declaring batch 1 is run one image at a time; another fixed size
  gets zero-padded batches). With no declared batch, a batch of two is tried at load: when the graph
  cannot run it (e.g. a Reshape to a constant [1, -1]) or mixes the images, one image at a time.
- output: the graph's output node (`tf_graphdef`), output 0.
- a failure while running names the node, op and input shapes (ConfigError).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from arface_repro.errors import ConfigError, FormatError
from arface_repro.models.batch_probe import probe_batching
from arface_repro.models.preprocess import Preprocess, for_network
from arface_repro.models.tf_graphdef import declared_shape, dtype_name, load_graph, single_placeholder, split_input
from arface_repro.models.tf_ops import build_op
from arface_repro.models.torch_model import TorchModel
from arface_repro.utils.hashing import sha256_file


class TFGraphNet(nn.Module):
    """A frozen GraphDef as an nn.Module taking N×C×H×W (what `TorchModel` passes), run as N×H×W×C."""

    def __init__(self, path: str | os.PathLike):
        super().__init__()
        self.path = str(path)
        graph = load_graph(path)
        holder = single_placeholder(graph)
        if holder.attr["dtype"].type != 1:
            raise ConfigError(f"{graph.where(holder.name)}: input of type {dtype_name(holder.attr['dtype'].type)}; "
                              f"a float32 image input is expected")
        self.input_name, self.input_shape = holder.name, declared_shape(holder)
        self.output_name = graph.output
        self._where = {name: graph.where(name) for name in graph.order}
        # every op but the constants first: they read the constants they need at load time (`static`)
        ops = {name: build_op(graph, name) for name in graph.order
               if graph.nodes[name].op not in ("Placeholder", "Const")}
        inputs = {}  # run-time inputs of each op: (source node, output index), without the ones read at load time
        for name, op in ops.items():
            data = [t for t in graph.nodes[name].input if not t.startswith("^")]
            refs = [split_input(t)[:2] for i, t in enumerate(data) if i not in op.static]
            for src, k in refs:
                n_out = ops[src].outputs if src in ops else 1
                if k >= n_out:
                    raise ConfigError(f"{self._where[name]}: uses output {k} of node {src!r} "
                                      f"({graph.nodes[src].op}); this runner computes only its first {n_out}")
            inputs[name] = refs
        needed, todo = {self.output_name}, [self.output_name]
        while todo:  # the nodes the output needs at run time
            for src, _ in inputs.get(todo.pop(), []):
                if src not in needed:
                    needed.add(src)
                    todo.append(src)
        for name in graph.order:  # constants used at run time become buffers; the others are not kept
            if name in needed and graph.nodes[name].op == "Const":
                ops[name], inputs[name] = build_op(graph, name), []
        self.steps = [(name, inputs[name]) for name in graph.order if name in needed and name != self.input_name]
        self.ops = nn.ModuleDict({str(i): ops[name] for i, (name, _) in enumerate(self.steps)})
        last_use = {}
        for i, (_, refs) in enumerate(self.steps):
            for src, _ in refs:
                last_use[src] = i
        self._free_after = [[src for src, _ in refs if last_use[src] == i and src != self.output_name]
                            for i, (_, refs) in enumerate(self.steps)]
        if self.output_name == self.input_name or not self.steps:
            raise ConfigError(f"{self.path}: the graph's output is its input (no ops to run)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x.permute(0, 2, 3, 1))  # N×C×H×W -> TensorFlow's N×H×W×C (a view)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The graph's output for the input fed as TensorFlow takes it (N×H×W×C for images)."""
        declared = self.input_shape
        if declared is not None and (len(declared) != x.ndim or
                                     any(d is not None and d != s for d, s in zip(declared, x.shape))):
            raise ConfigError(f"{self.path}: input {self.input_name!r} is declared {declared} (N×H×W×C); "
                              f"got {list(x.shape)}")
        values = {self.input_name: (x,)}
        for i, (name, refs) in enumerate(self.steps):
            args = [values[src][k] for src, k in refs]
            try:
                values[name] = self.ops[str(i)](*args)
            except (RuntimeError, ValueError) as exc:
                shapes = [list(a.shape) for a in args]
                raise ConfigError(f"{self._where[name]} failed on inputs {shapes}: "
                                  f"{str(exc).splitlines()[0][:300]}") from None
            for src in self._free_after[i]:
                values.pop(src, None)
        return values[self.output_name][0]


class TFGraphModel(TorchModel):
    """A frozen TensorFlow graph run by `TFGraphNet` (see the module docstring)."""

    kind = "tfgraph"

    def identity(self) -> dict:
        return {**super().identity(), "engine": f"tfgraph-torch-{torch.__version__}"}


def load_tfgraph_model(spec: str, path: Path, preprocess=None, device=None) -> TFGraphModel:
    """The graph in `path` as an EmbeddingModel. Default preprocessing: RGB, (x − 127.5)/128, the graph's
    declared input size (else `preprocess` must give it)."""
    module = TFGraphNet(path)
    shape = module.input_shape
    if shape is not None and (len(shape) != 4 or shape[3] not in (None, 3)):
        raise FormatError(f"{path}: input {module.input_name!r} has shape {shape}; N×H×W×3 images expected")
    hw = (shape[1], shape[2]) if shape is not None and shape[1] and shape[2] else None
    pre = for_network(spec, Preprocess(), preprocess, hw, source=path)
    model = TFGraphModel(module, spec, pre, sha256_file(path), device)
    declared_batch = shape[0] if shape is not None else None
    if declared_batch:
        model.fixed_batch = declared_batch
        model.batch_note = f"batch {declared_batch} declared by the graph's input"
        model.embed(np.zeros((declared_batch, *pre.size, 3), dtype=np.uint8))  # sets embedding_size
    else:
        model.batch_note = probe_batching(model, model._run, (ConfigError, FormatError), lambda exc: str(exc)[-160:])
    return model




__all__ = ["TFGraphNet", "TFGraphModel", "load_tfgraph_model"]
