"""arface_repro: exact face-recognition evaluation protocols and a faithful ARFace trainer."""

__version__ = "0.1.0"
