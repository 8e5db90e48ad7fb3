"""MegaFace Challenge 1: the devkit file reader and writer (`devkit`), the identification and verification
metric (`metric`) and the protocol class (`protocol`)."""
