"""The reproduction layer for the ARFace paper (Zhang et al., IEEE T-BIOM 4(1), 2022), above evaluation and
training: the transcribed Tables I-XI (`targets`, from protocols/paper/), the run manifest and the paper's
claims (`manifest`), the comparison of records with the paper (`report`, `render`, `stats`,
`resolution`), the small-scale reproductions (`synthetic_runs`, `synthetic_task`, `synthetic_diagnostics`, `lfw_scale`,
`small_scale`), filling measured cells (`run_missing`, `evaluate_adapter`), and the figures (`figures`).
`reproduce_table` and `make_figures` run a table or the figures end to end; their command lines are
`arface paper table X` and `arface paper figures` (`arface_repro.commands.paper`), wrapped by
`scripts/reproduce_table.py` and `scripts/make_figures.py`."""
