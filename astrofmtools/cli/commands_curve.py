# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrofm label-curve``: error against the number of labels, for one or several models."""

import argparse
import logging
import time

from ..exceptions import InputError
from .inputs import check_outputs, given, read_stack
from .options import (add_common, add_labelled_cutouts, fraction, key_values, number_in,
                      positive_float, positive_int)

__all__ = ["add_parsers"]

log = logging.getLogger("astrofmtools")

#: The example at the end of ``astrofm label-curve --help``.
EXAMPLE = ("examples:\n  astrofm label-curve cutouts.fits --labels labels.ecsv --label-column "
           "class --model efficientnet_lite0 --model resnet18 --strategy frozen --fractions "
           "0.1,0.3,1 --seeds 3 -o curve.ecsv --png curve.png\n"
           "  astrofm label-curve train.fits --test test.fits --label-column class "
           "--model efficientnet_lite0 --model efficientnet_lite0@random -o curve.ecsv")


def add_parsers(add):
    """Declare the subcommands of this module (``add`` as in `~astrofmtools.cli.build_parser`)."""
    from . import parser as _parser
    _parser.EPILOG.setdefault("label-curve", EXAMPLE)  # this module owns its example
    p = add("label-curve", "train classifiers on growing fractions of the labels and measure "
                           "their error (a label-efficiency curve per model)", cmd_label_curve)
    add_labelled_cutouts(p, "labelled cutout stack written by 'astrofm cutouts'")
    p.add_argument("--fractions", default="0.1,0.3,1", type=_fractions,
                   help="label fractions, comma-separated, each in (0, 1] "
                        "(default: %(default)s)")
    p.add_argument("--seeds", type=positive_int, default=3, metavar="N",
                   help="seeds 0 .. N-1 of each fraction (default: %(default)s)")
    p.add_argument("--folds", type=number_in(2, integer=True), default=5, metavar="K",
                   help="stratified cross-validation folds (at least 2), without --test "
                        "(default: %(default)s)")
    p.add_argument("--test", default=None, metavar="CUTOUTS",
                   help="score on this labelled stack instead of cross-validating")
    p.add_argument("--test-labels", default=None, metavar="TABLE",
                   help="labels of --test (default: its own table's label column)")
    p.add_argument("--epochs", type=positive_int, default=None, help="training epochs")
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate")
    p.add_argument("--input-size", type=positive_int, default=None, metavar="PIX",
                   help="model input size (default: the backbone's; smaller is faster)")
    p.add_argument("--no-tta", action="store_true",
                   help="no test-time augmentation (8 times fewer forward passes)")
    p.add_argument("--png", default=None, metavar="PATH",
                   help="also draw the curves (error against number of labels) to this PNG")
    p.add_argument("--summary", default=None, metavar="PATH",
                   help="also write the mean and spread per model and fraction (.ecsv)")
    add_common(p, "table of runs, one row per model, fraction, seed and fold (.ecsv)",
               model={"action": "append", "default": None, "metavar": "NAME[@WEIGHTS]",
                      "help": "backbone of a curve; repeat for several; NAME@random or "
                              "NAME@FILE for other weights than --weights (default: "
                              "efficientnet_lite0)"},
               weights=True, device=True, batch_size=True)


def _fractions(text):
    """``--fractions``: label fractions in (0, 1], separated by commas."""
    values = [v.strip() for v in text.split(",") if v.strip()]
    try:
        if not values:
            raise argparse.ArgumentTypeError("")
        return [fraction(v) for v in values]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be fractions in (0, 1] separated by commas, not {text!r}") from None


def _models(args):
    """``{curve name: Classifier arguments}`` of the --model options."""
    settings = dict(strategy=args.strategy, head=args.head, weights=args.weights,
                    device=args.device, tta=not args.no_tta,
                    **key_values(args.strategy_option, "--strategy-option"),
                    **given(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size))
    preprocess = key_values(args.preprocess, "--preprocess")
    if args.input_size is not None:
        preprocess["input_size"] = args.input_size
    if preprocess:
        settings["preprocess"] = preprocess
    models = {}
    for text in args.model or ["efficientnet_lite0"]:
        name, sep, weights = text.partition("@")
        if not name or (sep and not weights):
            raise InputError(f"--model takes NAME or NAME@WEIGHTS, not {text!r}.")
        if text in models:
            raise InputError(f"--model {text} is given twice.")
        models[text] = {**settings, "backbone": name, **({"weights": weights} if sep else {})}
    return models


def cmd_label_curve(args):
    from ..catalog import write_table
    from ..classify import label_efficiency, label_efficiency_summary, plot_label_curve
    from .commands_classify import _labels_for

    check_outputs(args, kind="table", png="png", summary="table")
    models = _models(args)
    if args.test_labels is not None and args.test is None:
        raise InputError("--test-labels needs --test.")
    stack, labels = _labels_for(read_stack(args.cutouts), args)
    test = None
    if args.test is not None:
        test = _labels_for(read_stack(args.test), argparse.Namespace(
            labels=args.test_labels, label_column=args.label_column, cutouts=args.test,
            drop_unlabelled=args.drop_unlabelled, id_column=args.id_column,
            match_radius=args.match_radius, sky=args.sky))
    t0 = time.perf_counter()
    runs = label_efficiency(stack, labels, fractions=args.fractions, seeds=args.seeds,
                            models=models, test=test, folds=args.folds)
    write_table(runs, args.output, overwrite=args.overwrite)
    log.info("%d runs (%s) in %.1f s; written to %s", len(runs), runs.meta["validation"],
             time.perf_counter() - t0, args.output)
    summary = label_efficiency_summary(runs)
    for row in summary:
        log.info("%s, %g of the labels (%.0f): error %.3f +- %.3f, macro-F1 %.3f",
                 row["model"], row["label_fraction"], row["n_labels"], row["error"],
                 row["error_std"], row["macro_f1"])
    if args.summary is not None:
        write_table(summary, args.summary, overwrite=args.overwrite)
        log.info("summary written to %s", args.summary)
    if args.png is not None:
        plot_label_curve(runs, args.png, overwrite=args.overwrite)
        log.info("curves drawn to %s", args.png)
