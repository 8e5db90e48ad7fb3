"""The two crops `arface align` makes, and the box crop's defaults (a module of its own so that the command's
argument parsing reads them without importing MTCNN and torch)."""

MODES = ("template", "box")   # template: 5-point similarity to the ArcFace/SphereFace template; box: facenet's crop
BOX_DEFAULTS = {"margin": 32, "size": (160, 160)}  # facenet's LFW crops
