# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrofm pretrain``: self-supervised pretraining of a backbone on the user's own sky."""

import logging
import time

from ..exceptions import InputError
from .inputs import given
from .options import (RegistryChoices, add_common, key_values, non_negative_int, number_in,
                      number_or, positive_float, positive_int, probability, scheduler_of)

__all__ = ["add_parsers"]

log = logging.getLogger("astrofmtools")

#: The example at the end of ``astrofm pretrain --help``.
EXAMPLE = ("examples:\n  astrofm pretrain mosaics/*.fits -o my_radio_byol/ --epochs 50 "
           "--input-size 96\n"
           "  astrofm pretrain stamps/ cutouts.fits --method dino --model dinov2_vits14 "
           "-o my_dino/ --monitor labelled.fits --monitor-labels labels.ecsv "
           "--label-column class\n"
           "  torchrun --nproc_per_node 4 -m astrofmtools.cli pretrain pool.fits -o my_byol/\n"
           "then:\n  astrofm train cutouts.fits --model my_radio_byol/ --labels labels.ecsv "
           "-o model_dir/")


def add_parsers(add):
    """Declare the subcommands of this module (``add`` as in `~astrofmtools.cli.build_parser`)."""
    from . import parser as _parser
    _parser.EPILOG.setdefault("pretrain", EXAMPLE)  # this module owns its example
    p = add("pretrain", "adapt a backbone to your sky with self-supervised pretraining (BYOL, "
                        "DINO) on unlabelled cutouts; writes a backbone folder every command "
                        "takes as --model", cmd_pretrain)
    p.add_argument("inputs", nargs="+",
                   help="mosaic FITS (sources are found and cut out), folders or globs of "
                        "postage-stamp FITS, cutout stacks from 'astrofm cutouts', or .npz "
                        "files with an 'images' array")
    p.add_argument("--method", default="byol",
                   choices=RegistryChoices("astrofmtools.pretrain", "list_methods"),
                   metavar="NAME", help="self-supervised method: byol, dino or a registered "
                                        "one (default: %(default)s)")
    p.add_argument("--method-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the method, e.g. hidden_dim=1024 (repeatable)")
    p.add_argument("--name", default=None,
                   help="registry name of the result (default: the output folder's name)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="passes over the pool (default: the method's, 100)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="peak learning rate (AdamW)")
    p.add_argument("--warmup-epochs", type=non_negative_int, default=None,
                   help="epochs of linear warm-up before the cosine decay")
    p.add_argument("--input-size", type=positive_int, default=None, metavar="PIX",
                   help="model input side (default: the backbone's; 64-96 suit a laptop)")
    p.add_argument("--zoom", default=None, type=number_or("auto", number_in(1)),
                   help="central crop before resizing: a number >= 1 or 'auto' (as for "
                        "'astrofm train'; default 1)")
    p.add_argument("--size", type=positive_int, default=64, metavar="PIX",
                   help="side of the cutouts taken from mosaics and stamps "
                        "(default: %(default)s)")
    p.add_argument("--snr", type=positive_float, default=5.0,
                   help="significance of the sources cut out of mosaics (default: "
                        "%(default)s)")
    p.add_argument("--max-per-image", type=positive_int, default=None, metavar="N",
                   help="keep at most the N most significant sources of each mosaic")
    p.add_argument("--blur", type=probability, default=0.0, metavar="P",
                   help="fraction of the views blurred (default: %(default)s)")
    p.add_argument("--monitor", default=None, metavar="CUTOUTS",
                   help="a small labelled stack whose k-NN error is printed during "
                        "pretraining")
    p.add_argument("--monitor-labels", default=None, metavar="TABLE",
                   help="labels of --monitor (default: its own table)")
    p.add_argument("--label-column", default="label",
                   help="the label column of the monitor set (default: %(default)s)")
    p.add_argument("--monitor-every", type=positive_int, default=5, metavar="N",
                   help="epochs between k-NN measurements (default: %(default)s)")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="write a checkpoint there after every epoch; a rerun resumes")
    add_common(p, "backbone folder to write (give it to --model of any command)",
               model=True, weights=True, device=True, batch_size=True, workers=True, seed=True)


def cmd_pretrain(args):
    import os
    from ..pretrain import Pretrainer, build_pool
    from .inputs import check_outputs, read_stack

    main_process = int(os.environ.get("RANK", "0")) == 0
    if main_process:
        check_outputs(args, kind="folder")
    if args.monitor_labels is not None and args.monitor is None:
        raise InputError("--monitor-labels needs --monitor.")
    pretrainer = Pretrainer(
        args.model, method=args.method, weights=args.weights,
        **given(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                warmup_epochs=args.warmup_epochs, input_size=args.input_size),
        preprocess=given(zoom=args.zoom) or None, views={"blur_probability": args.blur},
        method_options=key_values(args.method_option, "--method-option"),
        monitor_every=args.monitor_every, device=args.device, seed=args.seed,
        checkpoint_dir=args.checkpoint_dir)
    monitor = None
    if args.monitor is not None:  # read (and its labels checked) before the pool is built
        import argparse
        from .commands_classify import _labels_for
        monitor = _labels_for(read_stack(args.monitor), argparse.Namespace(
            labels=args.monitor_labels, label_column=args.label_column,
            cutouts=args.monitor))
    scheduler, workers = scheduler_of(args)
    t0 = time.perf_counter()
    pool = build_pool(args.inputs, size=args.size, snr=args.snr,
                      max_per_image=args.max_per_image,
                      scheduler=scheduler, workers=workers)
    log.info("pool: %d cutouts of %d x %d pixels from %d input(s) in %.1f s", len(pool),
             args.size, args.size, len(args.inputs), time.perf_counter() - t0)
    pretrainer.fit(pool, monitor=monitor)
    history = pretrainer.history_
    if not main_process:
        return 0
    spec = pretrainer.save(args.output, name=args.name, overwrite=args.overwrite)
    log.info("%s pretraining of %s: %d epochs in %.0f s, final loss %.3f", args.method,
             args.model, len(history) - 1, pretrainer.fit_seconds_, history["loss"][-1])
    knn = [(int(r["epoch"]), float(r["knn_error"])) for r in history
           if r["knn_error"] == r["knn_error"]]
    if knn:
        log.info("k-NN error of the monitor set: %s", ", ".join(
            f"epoch {e}: {100 * v:.1f} %" for e, v in knn))
    log.info("backbone %r written to %s; use it with --model %s", spec.name, args.output,
             args.output)
    return 0
