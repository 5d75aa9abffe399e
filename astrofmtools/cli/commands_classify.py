# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrofm train`` and ``classify``: a classifier of cutouts on a foundation model."""

import argparse
import logging
import time

import numpy as np

from ..exceptions import InputError
from .inputs import check_outputs, given, read_stack
from .options import (add_common, add_labelled_cutouts, add_region_options, fraction,
                      key_values, non_negative_int, number_in, positive_float, positive_int,
                      region_style_of)

__all__ = ["add_parsers"]

log = logging.getLogger("astrofmtools")


def _add_tta(parser, default_help):
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                        help="test-time augmentation: average over the eight flips and quarter "
                             f"turns ({default_help})")


def add_parsers(add):
    """Declare the subcommands of this module (``add`` as in `~astrofmtools.cli.build_parser`)."""
    p = add("train", "train a classifier of cutouts on a foundation-model backbone", cmd_train)
    add_labelled_cutouts(p)
    p.add_argument("--epochs", type=positive_int, default=None, help="training epochs")
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate")
    p.add_argument("--label-fraction", type=fraction, default=1.0,
                   help="use this fraction of the labels, in (0, 1] (per class, seeded)")
    p.add_argument("--calibration-fraction", type=number_in(0, 1, high_open=True), default=0.0,
                   help="hold out this fraction of each class (never trained on) to calibrate "
                        "conformal prediction sets for 'astrofm classify --conformal' "
                        "(default: 0, none)")
    p.add_argument("--conformal-method", default="aps", choices=["aps", "lac", "raps"],
                   help="nonconformity score of the conformal sets (default: aps)")
    p.add_argument("--mondrian", action="store_true",
                   help="class-conditional conformal calibration: the coverage holds for "
                        "every class")
    p.add_argument("--ood", default=None, choices=["knn", "mahalanobis"],
                   help="fit an out-of-distribution detector on the training features; "
                        "'astrofm classify' then adds ood_score and ood_flag")
    _add_tta(p, "default: on with a CUDA device, off on a CPU, where it makes feature "
                "extraction eight times slower; the model keeps the choice")
    add_common(p, "model folder (config + safetensors weights)", model=True, weights=True,
               device=True, batch_size=True, seed=True)

    p = add("classify", "classify cutouts with a trained model folder", cmd_classify)
    p.add_argument("cutouts", help="cutout stack written by 'astrofm cutouts'")
    p.add_argument("--regions", default=None,
                   help="also write regions coloured by class (.reg or .crtf)")
    add_region_options(p)
    p.add_argument("--conformal", type=number_in(0, 1, low_open=True, high_open=True),
                   default=None, metavar="ALPHA",
                   help="add conformal prediction sets that hold the true class with "
                        "probability >= 1 - ALPHA (e.g. 0.1; the model must have been trained "
                        "with --calibration-fraction)")
    p.add_argument("--mc-dropout", type=non_negative_int, default=0, metavar="N",
                   help="add the entropy and mutual information of N passes with dropout on "
                        "(models with an mlp head)")
    _add_tta(p, "default: as the model was trained; for a frozen backbone, the features "
                "then match those its head learnt from")
    add_common(p, "predictions table (.ecsv, .fits or .vot)",
               model={"default": None, "required": True,
                      "help": "model folder written by 'astrofm train'"},
               device=True, batch_size=True)


def _labels_for(stack, args):
    """
    The cutouts and the label of each, from the stack's table or a separate table.

    ``--labels TABLE`` is joined to the cutouts on ``--id-column`` (by
    default ``id`` when both tables have it), on the sky with
    ``--match-radius`` (each cutout takes its nearest labelled position;
    ``--sky`` names the table's sky columns), or else row by row. Cutouts
    without a row in the table, and blank or masked labels, are an error
    that counts them and names them; with ``args.drop_unlabelled``
    (``--drop-unlabelled``) those cutouts are left out instead, and their
    number is logged.

    Returns
    -------
    stack : `~astrofmtools.cutouts.CutoutStack`
        The labelled cutouts.
    labels : `~astropy.table.Column`
        Their labels, row-aligned with ``stack``.
    """
    from ..catalog import read_table
    from ..classify.inputs import _unlabelled
    column = args.label_column
    drop = getattr(args, "drop_unlabelled", None)
    hint = ", or pass --drop-unlabelled to leave them out" if drop is not None else ""
    rows = None  # the row of the labels table of each cutout, when joined
    if args.labels is None:
        source, table = f"the cutouts' table of {args.cutouts}", stack.table
        if column not in table.colnames:
            raise InputError(f"The cutouts' table of {args.cutouts} has no column {column!r} "
                             f"(its columns: {', '.join(table.colnames)}); name it with "
                             "--label-column or give --labels.")
        values = table[column]
    else:
        source, table = args.labels, read_table(args.labels)
        if column not in table.colnames:
            raise InputError(f"{args.labels} has no column {column!r}; its columns: "
                             f"{', '.join(table.colnames)}.")
        id_column = getattr(args, "id_column", None)
        radius = getattr(args, "match_radius", None)
        if radius is not None:
            rows, missing = _rows_by_sky(stack, table, args, radius)
        elif id_column is not None or ("id" in table.colnames and "id" in stack.table.colnames):
            rows, missing = _rows_by_id(stack, table, args, id_column or "id")
        elif len(table) != len(stack):
            raise InputError(f"{args.labels} has {len(table)} rows and {args.cutouts} "
                             f"{len(stack)} cutouts; join them with --id-column (a column "
                             "both have) or --match-radius (by sky position), or keep them "
                             "row-aligned.")
        else:
            rows, missing = np.arange(len(table)), ""
        unmatched = rows < 0
        if unmatched.any():
            n_bad = int(unmatched.sum())
            text = (f"{n_bad} of {len(stack)} cutouts of {args.cutouts} have no label in "
                    f"{args.labels} ({missing})")
            if not drop:
                raise InputError(f"{text}; label them{hint}.")
            if n_bad == len(stack):
                raise InputError(f"{text}: there is nothing to train on.")
            log.warning("%s: left out", text)
            keep = np.flatnonzero(~unmatched)
            stack, rows = stack[keep], rows[keep]
        values = table[column][rows]
    unlabelled = _unlabelled(values)
    if not unlabelled.any():
        return stack, values
    bad = np.flatnonzero(unlabelled)
    if not drop:
        where = bad if rows is None else np.unique(rows[bad])
        shown = ", ".join(str(r) for r in where[:10]) + (" ..." if len(where) > 10 else "")
        ids = ""
        if "id" in table.colnames:
            ids = f"; ids {', '.join(str(table['id'][r]) for r in where[:10])}"
            ids += " ..." if len(where) > 10 else ""
        raise InputError(f"{source}: column {column!r} is blank or missing in {len(where)} "
                         f"row(s) (0-based rows {shown}{ids}); label them{hint}.")
    keep = np.flatnonzero(~unlabelled)
    if not len(keep):
        raise InputError(f"{source}: column {column!r} is blank or missing in every row; "
                         "there is nothing to train on.")
    log.warning("%d of %d cutouts of %s left out: column %r of %s is blank or missing for "
                "them", len(bad), len(stack), args.cutouts, column, source)
    return stack[keep], values[keep]


def _id_key(value, file_names):
    """The text an id is compared as: ``3`` and ``3.0`` alike; file names without folders."""
    if value is np.ma.masked or value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return None
        value = int(value) if float(value).is_integer() else float(value)
    text = str(value).strip()
    if file_names:
        from pathlib import PurePath
        text = PurePath(text.replace("\\", "/")).name
    return text or None


def _rows_by_id(stack, table, args, name):
    """The row of ``table`` of each cutout by a shared id column (-1: none), and the ids
    without a row, in words."""
    # NAME, or CUTOUTS_COLUMN=LABELS_COLUMN when the two tables name it differently
    ours, _, theirs = name.partition("=")
    theirs = theirs or ours
    for where, t, column in ((args.labels, table, theirs),
                             (f"the cutouts' table of {args.cutouts}", stack.table, ours)):
        if column not in t.colnames:
            raise InputError(f"--id-column {name}: {where} has no column {column!r}; its "
                             f"columns: {', '.join(t.colnames)}.")
    files = any(c.startswith("file") for c in (ours, theirs))  # matched on file names
    index, twice = {}, set()
    for k, value in enumerate(table[theirs]):
        key = _id_key(value, files)
        if key is not None and key in index:
            twice.add(key)
        index.setdefault(key, k)
    keys = [_id_key(v, files) for v in stack.table[ours]]
    clash = sorted(k for k in set(keys) if k in twice)
    if clash:
        raise InputError(f"{args.labels}: {theirs} {', '.join(clash[:10])} appear(s) on several "
                         "rows; give each id one label.")
    rows = np.array([index.get(k, -1) if k is not None else -1 for k in keys], dtype=np.int64)
    lost = [k for k, r in zip(keys, rows) if r < 0]
    return rows, (f"{ours} {', '.join(map(str, lost[:10]))}" + (" ..." if len(lost) > 10
                                                                else ""))


def _rows_by_sky(stack, table, args, radius):
    """The row of ``table`` of each cutout by sky position (-1: none within ``radius``)."""
    from astropy.table import QTable
    from ..catalog import crossmatch
    from ..schema import parse_positions
    mine = parse_positions(stack.table, kind="sky", required=False)
    if mine is None:
        raise InputError(f"--match-radius: the cutouts of {args.cutouts} have no sky positions "
                         "(no sky_centroid or ra/dec columns: cut from an image with a WCS, "
                         "or stamps with one); join the labels with --id-column instead.")
    theirs = parse_positions(table, getattr(args, "sky", None), kind="sky", name=args.labels,
                             argument="--sky")
    matched = crossmatch(QTable({"sky_centroid": mine.sky}),
                         QTable({"sky_centroid": theirs.sky}), max_sep=radius, mode="nearest",
                         keep_unmatched=True)
    rows = np.ma.filled(np.ma.asarray(matched["ref_index"]), -1).astype(np.int64)
    crowded = int(np.sum(np.asarray(matched["n_matches"]) > 1))
    if crowded:
        log.info("%d cutouts have several labelled positions within %s; each took the "
                 "nearest", crowded, radius)
    return rows, f"no labelled position within {radius:g} of their {mine.describe()}"


def _check_regions(stack, name, fmt, path):
    """Refuse --regions the cutouts cannot give: no positions, or CRTF without a WCS."""
    from ..schema import parse_positions
    positions = parse_positions(stack.table, kind="any", required=False)
    if positions is None:
        raise InputError(f"--regions {path}: the cutouts' table of {name} has no source "
                         "positions (x and y, sky_centroid, or ra and dec; its columns: "
                         f"{', '.join(stack.table.colnames)}).")
    if fmt == "crtf" and stack.image_wcs is None:
        raise InputError(f"--regions {path}: CRTF regions are in sky coordinates and the "
                         f"cutouts of {name} do not come from one image with a WCS; write "
                         ".reg (DS9) instead.")


def cmd_train(args):
    from ..classify import Classifier

    check_outputs(args, kind="folder")
    # every setting is checked (the registries, the schedule) before the data is read
    clf = Classifier(args.model, head=args.head, strategy=args.strategy, weights=args.weights,
                     label_fraction=args.label_fraction, seed=args.seed, device=args.device,
                     calibration_fraction=args.calibration_fraction,
                     conformal_method=args.conformal_method, mondrian=args.mondrian,
                     ood=args.ood, tta="auto" if args.tta is None else args.tta,
                     preprocess=key_values(args.preprocess, "--preprocess") or None,
                     **key_values(args.strategy_option, "--strategy-option"),
                     **given(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size))
    stack, labels = _labels_for(read_stack(args.cutouts), args)
    t0 = time.perf_counter()
    clf.fit(stack, labels)
    log.info("trained %s/%s on %s (%d of %d parameters trainable) in %.1f s", args.strategy,
             args.head, args.model, clf.n_trainable_, clf.n_parameters_,
             time.perf_counter() - t0)
    scores = clf.validation_scores_
    if scores is None:
        log.info("no validation split: no validation score")
    else:
        log.info("validation split (%d cutouts): accuracy %.3f, macro-F1 %.3f", scores["n"],
                 scores["accuracy"], scores["macro_f1"])
    clf.save(args.output, overwrite=args.overwrite)
    log.info("model written to %s", args.output)


def cmd_classify(args):
    from ..catalog import write_regions, write_table
    from ..classify import Classifier

    formats = check_outputs(args, kind="table", regions="regions")
    stack = read_stack(args.cutouts)
    if args.regions is not None:  # before any work: the regions need positions
        _check_regions(stack, args.cutouts, formats["regions"], args.regions)
    clf = Classifier.load(args.model, device=args.device)
    if args.tta is not None:
        clf.tta = args.tta
    if args.conformal is not None and getattr(clf, "conformal_", None) is None:
        raise InputError(f"The model {args.model} has no conformal calibration: train it with "
                         "--calibration-fraction (e.g. 0.2) to use --conformal.")
    table = clf.predict(stack, conformal=args.conformal, mc_dropout=args.mc_dropout,
                        **given(batch_size=args.batch_size))
    if args.regions is not None:  # first: written atomically, it fails before the table
        write_regions(table, args.regions, format=formats["regions"], wcs=stack.image_wcs,
                      overwrite=args.overwrite, **region_style_of(args))
    write_table(table, args.output, overwrite=args.overwrite)
    counts = dict(zip(*np.unique(np.asarray(table["label"]).astype(str), return_counts=True)))
    log.info("%d cutouts classified (%s); written to %s", len(table),
             ", ".join(f"{k}: {v}" for k, v in counts.items()), args.output)
    if "set_size" in table.colnames:
        log.info("conformal sets (coverage >= %g): mean size %.2f, %d of one class",
                 1 - args.conformal, float(np.mean(table["set_size"])),
                 int(np.sum(np.asarray(table["set_size"]) == 1)))
    if "ood_flag" in table.colnames:
        log.info("%d cutouts flagged as unlike the training set (ood_flag)",
                 int(np.sum(table["ood_flag"])))
    if args.regions is not None:
        log.info("regions written to %s", args.regions)
