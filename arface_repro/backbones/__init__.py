"""Network architectures and their weights: the layer under the method and the model kinds.

- `registry`: `register_model` / `create_model` / `list_models` (the architectures `torch:ARCH:FILE` specs and
  training configs name); the built-in architectures `mobilefacenet`, `iresnet`, `ir`, `inception_resnet_v1`,
  `tiny_resnet`, and the margin heads trained on top of them (`heads`);
- `state_dict`: a PyTorch checkpoint's state dict read safely and loaded strictly into a registry architecture.

Layering (ARCHITECTURE.md): `data` → `backbones` → `method` (the ARFace method, including its inference network
`method.arface_inference`) → `models` (model kinds: a spec string to an `EmbeddingModel`) → `eval`. The
architectures sit below the method because the method's networks wrap them, and the model kinds sit above the
method because the `arface:` kind loads the method's inference network; nothing here imports `method` or `models`.
"""
