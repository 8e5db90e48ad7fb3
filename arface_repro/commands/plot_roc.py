"""`arface plot-roc`: draw ROC curves of one or more result records into one figure."""

from __future__ import annotations

from arface_repro.eval.plots import check_figure_path, plot_roc
from arface_repro.io.record_sniff import check_record_file
from arface_repro.io.records import load_record
from arface_repro.utils.argtypes import float_range
from arface_repro.utils.outputs import Output, check_outputs


def register(sub) -> None:
    p = sub.add_parser("plot-roc", help="plot ROC curves from result records",
                       description="Draw one ROC curve per result record: log-FAR axis with the operating points of the protocol marked, legend (preset or model file name, the rule where records differ, the headline metric) inside the axes; the format (PDF, SVG, PNG) follows the file extension.")
    p.add_argument("records", nargs="+", help="result record JSON files")
    p.add_argument("-o", "--out", required=True, help="figure file (.png, .pdf, .svg)")
    p.add_argument("--label", action="append", help="legend label per record (repeat; default: preset or model file name)")
    p.add_argument("--title", help="figure title")
    p.add_argument("--xmin", type=float_range(0.0, 1.0, lo_open=True, hi_open=True), help="smallest FAR on the axis")
    p.set_defaults(func=run)


def run(args) -> int:
    check_figure_path(args.out)
    check_outputs([Output(args.out, "-o")], args.records)
    recs = []
    for path in args.records:
        check_record_file(path)
        rec = load_record(path)
        rec["_path"] = path
        recs.append(rec)
    out = plot_roc(recs, args.out, labels=args.label, title=args.title, xmin=args.xmin)
    print(f"figure: {out}")
    return 0
