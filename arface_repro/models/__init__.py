"""Model kinds: a model spec string (or an in-memory module) to an `EmbeddingModel` (`backends.load_model`).

The registry of kinds is `kinds/` (one module per spec prefix); `presets` runs a known checkpoint family with one
of them; `onnx_export` writes ONNX files the `onnx:` kind reads back. This layer sits above `backbones`
(architectures, state dicts) and `method` (the ARFace inference network), and below `eval`.
"""
