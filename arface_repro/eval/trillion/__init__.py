"""Trillion-Pairs (DeepGlint): the list and feature-store reader (`reader`), the metrics (`metric`) and the protocol
class (`protocol`)."""
