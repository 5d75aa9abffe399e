# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrofm study``: a grid of classifiers or detectors (backbones x preprocessing x methods
x label fractions x seeds)."""

import logging
from pathlib import Path

from ..exceptions import InputError
from .options import add_common, positive_float, scheduler_of

__all__ = ["add_parsers"]

log = logging.getLogger("astrofmtools")

#: The example at the end of ``astrofm study --help``.
EXAMPLE = ("examples:\n  astrofm study study.yaml -o study_dir/ --dry-run\n"
           "  astrofm study study.yaml -o study_dir/ --max-hours 2 --workers 4\n"
           "Rerun the same command on the same folder to resume: the folder caches one\n"
           "result per cell, so only the cells missing (or new in a widened grid) run.")


def add_parsers(add):
    """Declare the subcommands of this module (``add`` as in `~astrofmtools.cli.build_parser`)."""
    from . import parser as _parser
    _parser.EPILOG.setdefault("study", EXAMPLE)  # this module owns its example
    p = add("study", "run a study: classifiers (or detectors) on a grid of backbones, "
                     "preprocessing, "
                     "strategies and heads, label fractions and seeds, each cell once "
                     "(cached in the output folder, so a rerun resumes)", cmd_study)
    p.add_argument("config", help="study settings (.yaml or .json; see the 'Studies' page "
                                  "of the documentation)")
    p.add_argument("--max-hours", type=positive_float, default=None, metavar="H",
                   help="budget: skip the most expensive cells (by the estimate) until the "
                        "rest fit in H hours (default: the config's max_hours, else none)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the cells and the estimated cost, run nothing")
    p.add_argument("--no-maps", action="store_true",
                   help="draw no UMAP map of each backbone's features (they take about a "
                        "minute each on a CPU)")
    add_common(p, {"metavar": "FOLDER",
                   "help": "study folder: cells/ (one result per cell), results.ecsv, "
                           "summary.ecsv, figures, report.md and report.html; an existing "
                           "one is resumed (with --overwrite, every cell is recomputed)"},
               workers=True)


def cmd_study(args):
    from ..study import StudyConfig, estimate_cost, run_study, study_cells, study_data

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InputError(f"-o/--output {args.output!r} is a file; the study needs a folder.")
    config = StudyConfig(args.config)
    cells = study_cells(config)
    data = study_data(config)
    train, test = data[2], data[3]
    # timed on this machine: a few seconds per backbone and input size
    estimate = estimate_cost(config, n_train=len(train), n_test=len(test), calibrate=True)
    total = sum(estimate.values())
    if args.dry_run:
        for cell in cells:
            print(f"{cell['name']}  ~{estimate[cell['name']]:.0f} s")
        print(f"{len(cells)} cells, {len(train)} training and {len(test)} test cutouts; "
              f"estimated {total:.0f} s ({total / 3600:.2f} h) if none is cached")
        return
    log.info("%d cells, estimated %.0f s (%.2f h) if none is cached", len(cells), total,
             total / 3600)
    if args.overwrite and (out / "cells").is_dir():
        for path in [*(out / "cells").glob("*.json"), *out.glob("map_*.png")]:
            path.unlink()  # recompute every cell, redraw every map
    scheduler, workers = scheduler_of(args)
    result = run_study(config, out, scheduler=scheduler, workers=workers,
                       max_hours=args.max_hours, data=data, maps=not args.no_maps,
                       estimate=estimate)
    log.info("%d cells run, %d cached, %d skipped by the budget; results in %s",
             len(result.ran), len(result.cached), len(result.skipped), out)
    metric = config.metric
    for row in result.summary:
        log.info("%s %s %s f=%g: %s %.3f +- %.3f", row["backbone"], row["preprocess_name"],
                 row["method"], row["label_fraction"], metric, row[f"{metric}_mean"],
                 row[f"{metric}_std"])
    if len(result.results):
        log.info("report: %s (and report.html)", out / "report.md")
