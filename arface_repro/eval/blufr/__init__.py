"""BLUFR (LFW benchmark of large-scale unconstrained face recognition): the configuration reader (`config`),
the exact port of the toolkit's metric (`metric`) with its compiled passes (`passes`), and the protocol class
(`protocol`)."""
