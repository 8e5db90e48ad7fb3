"""`arface paper table X` and `arface paper figures`: the paper layer's command lines (argparse only; the work is
in `arface_repro.paper.reproduce_table` and `arface_repro.paper.make_figures`).

`python scripts/reproduce_table.py X` and `python scripts/make_figures.py` are wrappers of `reproduce_table_main`
and `make_figures_main`: the same options, the same output, their own program name in messages.
"""

from __future__ import annotations

import argparse
import sys

from arface_repro.errors import ArfaceError

TABLE_HELP = """Regenerate a table of the ARFace paper (Zhang et al., IEEE T-BIOM 4(1), 2022) beside the paper's values.

    arface paper table X                        # Table X: a summary here, the report in results/tables/
    arface paper table X --wide                 # the full tables here as well
    arface paper table 11 --format md           # print the Markdown report instead of the summary
    arface paper table 2 --targets-only --format csv   # the paper's Table II alone, as printed
    arface paper table X --steps 20 --seeds 0   # quick mode (a few steps, one seed)
    arface paper table X --lfw-scale            # + the LFW-scale columns (needs ../shared or --data-root)
    arface paper table VI --run --data DATA.yaml   # evaluate / train what DATA.yaml makes possible
    arface paper table X --strict               # exit 1 when a measured cell is off or not current
    (`python scripts/reproduce_table.py X ...` is the same command.)

Every run writes the report results/tables/table_NN.md and a self-contained table_NN.html (figures embedded;
the Markdown links them under table_NN_figures/) and prints a summary of at most 100 columns and the report's
path. Quick or partial runs (--steps, fewer seeds than the manifest's) say so in the titles.

For every cell: the paper's value (protocols/paper/table_XX.yaml), the measured value from the result record
the run manifest names (protocols/paper/manifest.yaml: <runs>/paper/<run>/<protocol>.json), the difference
and a status (within tolerance / OFF / missing). Then, for every pair of rows the paper compares, the
difference in the protocol's resolution and, where two results exist, a paired test. Tables X and XI are
also trained at small scale on the built-in synthetic occluded-face generator (several seeds; records are
reused when config, overrides, seed, the code identity and the environment match: after any change to the
package's source they are trained again). A measured cell whose record was made by other code ('stale') or
by another model than the row's ('other model', 'model unverified') is flagged. Exit status: 0, 1 with
--strict when a filled cell is off or flagged, 2 on bad input.
"""

FIGURES_HELP = """Regenerate the ARFace paper's figures under results/figures/ (what the available data allows).

    arface paper figures                         # all of 3 4 5 6
    arface paper figures --fig 3 4 --steps 60    # a quicker Attention-Net for Fig. 4
    arface paper figures --fig 4 --checkpoint runs/x/checkpoint_last.pt
    (`python scripts/make_figures.py ...` is the same command.)

- Fig. 3 (keep/drop modes): a real LFW face (../shared, 112x96 crop padded to 112x112, template
  landmarks, the paper's patch radius 30 px) when the shared folder is present, else a synthetic face
  (patch radius 12 px). -> fig3_mask_modes.png
- Fig. 4 (Attention-Net decisions): from --checkpoint, else `--config` (default
  configs/syn_arface_l3.yaml: synthetic occluded faces, patch radius 12) trained for `--steps` steps
  (default: the config's own) into <runs>/train/figures_<config> (reused when that checkpoint
  matches). Decisions are shown on held-out synthetic faces and on real LFW faces, both with the
  config's patch radius. -> fig4_attention_synthetic.png, fig4_attention_lfw.png
- Fig. 5 (ROC): the IJB-B / IJB-C records (with curves.roc) of the runs protocols/paper/manifest.yaml names
  under `figures.fig5` (<runs>/paper/<run>/ijbb.json, ijbc.json; the curves labelled as there).
  -> fig5_roc_ijbb.png, fig5_roc_ijbc.png
- Fig. 6 (LFW accuracy, BLUFR VR, BLUFR DIR vs num_layers, one line per architecture): the records of
  the num_layers sweep named in protocols/paper/manifest.yaml under --runs-dir: real-scale runs
  (<runs>/paper/<run>/{lfw,blufr}.json) -> fig6_num_layers.png, and the synthetic small-scale runs
  (`arface paper table X` writes them) -> fig6_num_layers_synthetic.png; Table X's printed
  points are drawn beside them.

A figure whose inputs are missing is reported (what is missing and how to make it), not drawn; the exit
status is 1 when any requested figure was not drawn, 0 otherwise.
"""

FIGURE_NAMES = ("3", "4", "5", "6")


def register(sub) -> None:
    p = sub.add_parser("paper", help="the paper's tables and figures beside what was measured",
                       description="The ARFace paper's Tables I-XI (`arface paper table X`) and figures "
                                   "(`arface paper figures`) regenerated beside the measured records.")
    group = p.add_subparsers(dest="paper_command", metavar="WHAT")
    group.required = True
    t = group.add_parser("table", help="a table of the paper beside the measured values",
                         description=TABLE_HELP.split("\n\n")[0], epilog=TABLE_HELP.split("\n", 1)[1],
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    add_table_arguments(t)
    t.set_defaults(func=_run_table)
    f = group.add_parser("figures", help="the paper's figures 3-6 from images, a trained Attention-Net and records",
                         description=FIGURES_HELP.split("\n\n")[0], epilog=FIGURES_HELP.split("\n", 1)[1],
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    add_figures_arguments(f)
    f.set_defaults(func=_run_figures)


def add_table_arguments(ap: argparse.ArgumentParser) -> None:
    # the defaults live in paper.reproduce_table (TableOptions); None here means "the default"
    ap.add_argument("table", nargs="?", help="table number, 1..11 or I..XI")
    ap.add_argument("--targets-only", action="store_true", help="print the paper's table alone, as printed")
    ap.add_argument("--format", choices=("text", "md", "csv"), default="text",
                    help="text: a summary (--wide: the full tables); md: print the Markdown report; csv: print the "
                         "cells as CSV and also write results/tables/table_XX.csv")
    ap.add_argument("--wide", action="store_true", help="print the full tables (wider than 100 columns)")
    ap.add_argument("--runs-dir", help="result records (default results/runs)")
    ap.add_argument("--tables-dir", help="where the reports go (default results/tables)")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a measured cell is outside its tolerance, or its record is stale (made by other "
                         "code) or not from the row's model")
    g = ap.add_argument_group("small-scale reproductions (Tables X and XI)")
    g.add_argument("--no-synthetic", action="store_true", help="do not train / show the synthetic rows")
    g.add_argument("--seeds", help="seeds, e.g. 0,1,2 or 0-4 (default: the manifest's, 0-4)")
    g.add_argument("--steps", type=int, help="training steps per small-scale run (quick mode)")
    g.add_argument("--override", action="append", default=[], metavar="KEY=VALUE", help="config override for every small-scale run")
    g.add_argument("--workers", type=int, help="parallel training processes (default: the CPUs, at most 8)")
    g.add_argument("--rerun", action="store_true", help="train again even when a matching record exists")
    g.add_argument("--extras", action="store_true", help="also the extra rows (per-image reward), not part of the paper")
    g.add_argument("--full", action="store_true", help="all the table's synthetic blocks (default: the manifest's "
                                                        "default_blocks, the MobileFaceNet block, + diagnostic rows)")
    g.add_argument("--lfw-scale", action="store_true", help="also train the LFW-scale rows (LFW + BLUFR from ../shared)")
    g.add_argument("--data-root", help="LFW-scale data root laid out like ../shared/data (lfw/aligned-112x96, lfw/pairs.txt, "
                                       "blufr/blufr_lfw_config.mat); implies --lfw-scale")
    g = ap.add_argument_group("filling measured cells")
    g.add_argument("--run", action="store_true", help="train / evaluate the missing cells DATA.yaml makes possible")
    g.add_argument("--data", help="DATA.yaml: dataset roots, training data and checkpoints (paths only)")
    g.add_argument("--trust-torchscript", action="store_true",
                   help="let DATA.yaml name torchscript: checkpoints (a TorchScript file is a program; refused otherwise)")
    ap.add_argument("--check-paper", metavar="PAPER.txt", help="compare every transcribed table with a text copy of the paper")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")


def add_figures_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--fig", nargs="+", choices=FIGURE_NAMES, default=list(FIGURE_NAMES), help="figures to draw (default all)")
    ap.add_argument("--runs-dir", default="results/runs", help="result records (Fig. 5, 6) and Fig. 4 training folder")
    ap.add_argument("--out-dir", default="results/figures", help="where the figures go")
    ap.add_argument("--checkpoint", help="Fig. 4: an ARFace training checkpoint (default: train --config)")
    ap.add_argument("--config", help="Fig. 4: config to train when no --checkpoint (default configs/syn_arface_l3.yaml); "
                                      "with --checkpoint it must match the checkpoint's method section")
    ap.add_argument("--steps", type=int, help="Fig. 4: training steps (default: the config's train.steps)")


# The paper layer is imported when a paper command runs, not when `arface` builds its parser: build_parser
# imports every command module, and the paper layer's imports (reports, manifests, small-scale runs) would
# slow every other command's start-up.

def _run_table(args) -> int:
    # the table layer reaches numba (IJB kernels): loaded when a table is made, not at `arface --help`
    from arface_repro.paper.reproduce_table import TableOptions, reproduce_table

    return reproduce_table(TableOptions.from_namespace(args))


def _run_figures(args) -> int:
    # the figures reach cv2 and numba: loaded when figures are made, not at `arface --help`
    from arface_repro.paper.make_figures import FigureOptions, make_figures

    return make_figures(FigureOptions.from_namespace(args))


def _script_main(prog: str, add_arguments, help_text: str, run, argv) -> int:
    """A script's main: the command's parser under the script's name; errors as one line `PROG: error: ...`,
    exit 2 (the file system's refusals too), Ctrl-C exit 130."""
    ap = argparse.ArgumentParser(prog=prog, description=help_text.split("\n\n")[0], epilog=help_text.split("\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    args = ap.parse_args(argv)
    name = prog.removesuffix(".py")
    try:
        return int(run(args) or 0)
    except ArfaceError as exc:
        print(f"{name}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused (read-only or full --tables-dir / --runs-dir, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{name}: error: {where}{exc.strerror or _one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: workers are stopped (utils.process_pool); one line, the shell's status
        print(f"{name}: interrupted", file=sys.stderr)
        return 130


def reproduce_table_main(argv=None) -> int:
    """`python scripts/reproduce_table.py X ...`"""
    return _script_main("reproduce_table.py", add_table_arguments, TABLE_HELP, _run_table, argv)


def make_figures_main(argv=None) -> int:
    """`python scripts/make_figures.py ...`"""
    return _script_main("make_figures.py", add_figures_arguments, FIGURES_HELP, _run_figures, argv)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
