"""RMFRD (real-world masked faces): the masked-to-unmasked metric (`metric`) and the protocol class (`protocol`)."""
