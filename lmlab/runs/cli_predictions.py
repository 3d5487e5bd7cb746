"""`lmlab predictions DIR... [-o OUT] [--json]`: every planned run's prediction against what it reached.

A table (predicted loss and interval, actual final validation loss, inside or outside, error %) and
the calibration over all scored predictions (the fraction inside vs the nominal level, with an exact
binomial interval). Runs without a prediction, or not completed yet, are listed as unscored. With -o,
OUT/predictions.csv and the figure OUT/predictions.png (and .svg).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="+", help="run directories, directories holding them (searched recursively), "
                                                "or a predictions.csv that -o wrote")
    parser.add_argument("-o", "--output", help="a folder for predictions.csv and the figure predictions.png")
    parser.add_argument("--json", action="store_true", help="print the table and the calibration as JSON")


def run(args: argparse.Namespace) -> int:
    from lmlab.errors import DataError
    from lmlab.io import dumps
    from lmlab.runs.predictions import calibration, load_predictions

    table = load_predictions(args.dirs)
    if table["predicted"].isna().all():
        raise DataError(f"none of the {len(table)} run(s) under {', '.join(args.dirs)} carries a prediction; "
                        f"expected runs trained from a config written by `lmlab plan -o`")
    calib = calibration(table)
    written = _write(table, calib, args.output) if args.output else []
    if args.json:
        print(dumps({"predictions": table.to_dict(orient="records"), "calibration": calib.to_dict(orient="records"),
                     "written": [str(p) for p in written]}, indent=2))
        return 0
    print(render(table, calib))
    for path in written:
        print(f"wrote {path}")
    return 0


def render(table, calib) -> str:
    """The table and the calibration as text."""
    from lmlab.runs.predictions import SCORED

    width = max(len("run"), *(len(r) for r in table["run_id"]))
    lines = [f"{'run':<{width}}  {'predicted':>9}  {'interval':<20}  {'actual':>7}  {'':<7}  {'error':>7}"]
    for _, r in table.iterrows():
        if r["state"] == SCORED:
            band = f"[{r['lo']:.4f}, {r['hi']:.4f}] {r['level']:.0%}"
            lines.append(f"{r['run_id']:<{width}}  {r['predicted']:>9.4f}  {band:<20}  {r['actual']:>7.4f}  "
                         f"{'inside' if r['inside'] else 'OUTSIDE':<7}  {r['error_pct']:>+6.2f}%")
        else:
            lines.append(f"{r['run_id']:<{width}}  unscored: {r['why']}")
    scored = int((table["state"] == SCORED).sum())
    lines.append(f"{scored} of {len(table)} run(s) scored")
    for _, c in calib.iterrows():
        verdict = "consistent with" if c["consistent"] else "NOT consistent with"
        lines.append(f"calibration at {c['level']:.0%}: {c['inside']} of {c['n']} inside ({c['fraction']:.0%}, "
                     f"95% binomial interval [{c['ci_lo']:.0%}, {c['ci_hi']:.0%}]), {verdict} the nominal level")
    return "\n".join(lines)


def _write(table, calib, out_dir):
    from pathlib import Path

    from lmlab.analysis.plots import predictions, save_figure
    from lmlab.io import write_table
    from lmlab.runs.predictions import SCORED

    out = Path(out_dir)
    write_table(table, out / "predictions.csv")
    written = [out / "predictions.csv"]
    if (table["state"] == SCORED).any():
        written += save_figure(predictions(table, calib), out, "predictions")
    return written
