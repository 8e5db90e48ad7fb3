"""`arface compare A.json B.json [...]`: records of one protocol side by side with their paired tests."""

from __future__ import annotations

from arface_repro.errors import ConfigError
from arface_repro.eval.plots import check_figure_path, curve_labels, model_label, plot_roc
from arface_repro.eval.record_compare import compare_records, format_comparison, read_records
from arface_repro.utils.outputs import Output, check_outputs


def register(sub) -> None:
    p = sub.add_parser("compare", help="compare result records of one protocol with paired tests",
                       description="Records of one protocol side by side, each against the first: McNemar on "
                                   "per-pair decisions (accuracy), paired bootstrap of TAR@FAR from the scores "
                                   "sidecars, paired t over BLUFR trials. Records of different protocols, pair "
                                   "lists or protocol files are refused.")
    p.add_argument("records", nargs="+", help="result record JSON files (the first is A, the reference)")
    p.add_argument("--plot", metavar="FIG", help="also overlay their ROC curves in FIG (.png, .pdf, .svg)")
    p.add_argument("--reps", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.set_defaults(func=run)


def run(args) -> int:
    if len(args.records) < 2:
        raise ConfigError("compare needs at least two records")
    if args.reps < 10:
        raise ConfigError(f"--reps {args.reps}: at least 10 bootstrap resamples")
    if args.plot:
        check_figure_path(args.plot, "--plot")
        check_outputs([Output(args.plot, "--plot")], args.records)
    recs = read_records(args.records)
    rows = compare_records(recs, reps=args.reps)
    labels = [model_label(r) for r in recs]
    print(format_comparison(recs, rows, labels))
    if args.plot:
        out = plot_roc(recs, args.plot, labels=curve_labels(recs))
        print(f"figure: {out}")
    return 0
