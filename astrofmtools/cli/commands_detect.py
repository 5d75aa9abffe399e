# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrofm train-detector`` and ``detect``: a source detector on a foundation model."""

import logging
import time
from pathlib import Path

from ..exceptions import InputError
from .inputs import check_outputs, given, load_image_arg
from .options import (add_common, add_image_options, add_region_options,
                      add_strategy_options, key_values, non_negative_int, number_in, number_or,
                      positive_float, positive_int, probability, region_style_of,
                      scheduler_of)

__all__ = ["add_parsers"]

log = logging.getLogger("astrofmtools")

_BOX_SUFFIXES = (".reg", ".ds9", ".crtf", ".ecsv", ".vot", ".xml", ".csv")


def add_parsers(add):
    """Declare the subcommands of this module (``add`` as in `~astrofmtools.cli.build_parser`)."""
    p = add("train-detector", "train a source detector (Faster R-CNN on a foundation-model "
                              "backbone) on FITS images and their boxes", cmd_train_detector)
    p.add_argument("images", nargs="+", help="FITS images, or folders of them")
    p.add_argument("--boxes", default="find_sources",
                   help="a table (.ecsv, .fits, .vot) of boxes with an 'image' column naming "
                        "each row's file (bbox_* pixel columns, or sky positions with sizes); "
                        "or a folder of per-image .reg/.crtf/.ecsv files with the images' "
                        "names; or 'find_sources' for pseudo-labels (default)")
    p.add_argument("--label-column", default=None,
                   help="column (or region tag 'label') holding the classes (default: one "
                        "class, 'source')")
    add_strategy_options(p, "finetune")
    p.add_argument("--epochs", type=positive_int, default=20,
                   help="passes over the images (default: 20)")
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate")
    p.add_argument("--zoom", default="auto", type=number_or("auto", positive_float),
                   help="model pixels per image pixel, or 'auto' (default): the median box "
                        "covers a ViT patch or 16 pixels")
    p.add_argument("--crop-size", type=positive_int, default=256,
                   help="side of the training crops in model pixels (default: 256)")
    add_common(p, "detector folder (config.json + model.safetensors)", model=True,
               weights=True, device=True, batch_size=True, seed=True)

    p = add("detect", "detect sources in a FITS image or mosaic of any size with a trained "
                      "detector", cmd_detect)
    add_image_options(p)
    p.add_argument("--tile", type=positive_int, default=512,
                   help="tile side in pixels (default: 512)")
    p.add_argument("--overlap", type=non_negative_int, default=64,
                   help="pixels shared by neighbouring tiles; more than the largest source "
                        "(default: 64)")
    p.add_argument("--score-threshold", type=probability, default=0.5,
                   help="keep detections scoring at least this (default: 0.5)")
    p.add_argument("--iou-threshold", type=number_in(0, 1, low_open=True), default=0.3,
                   help="overlap above which boxes are duplicates (default: 0.3)")
    p.add_argument("--regions", default=None, help="also write box regions (.reg or .crtf)")
    add_region_options(p)
    add_common(p, "detections table (.ecsv, .fits or .vot)",
               model={"default": None, "required": True,
                      "help": "detector folder written by 'astrofm train-detector'"},
               device=True, batch_size=True, workers=True)


def _detector_boxes(boxes, files):
    """The --boxes of train-detector: 'find_sources', a table, or one file per image."""
    from ..catalog import read_table
    if boxes == "find_sources":
        return boxes
    path = Path(boxes)
    if path.is_dir():
        out = []
        for image in files:
            stem = image.name.split(".")[0]
            matches = [path / f"{stem}{suffix}" for suffix in _BOX_SUFFIXES
                       if (path / f"{stem}{suffix}").is_file()]
            if not matches:
                raise InputError(f"No boxes for {image.name} in {boxes}: expected {stem}.reg, "
                                 f"{stem}.ecsv or another of {', '.join(_BOX_SUFFIXES)}.")
            out.append(matches[0])
        return out
    if not path.is_file():
        raise InputError(f"--boxes {boxes}: no such file or folder (or use 'find_sources').")
    if path.suffix.lower() in (".reg", ".ds9", ".crtf"):
        return [path]
    table = read_table(path)
    if "image" not in table.colnames and len(files) > 1:
        raise InputError(f"{boxes} has no 'image' column to tell which of the {len(files)} "
                         "images each box belongs to.")
    return table


def cmd_train_detector(args):
    from ..detect import Detector

    check_outputs(args, kind="folder")
    from ..io import fits_files
    files = fits_files(args.images)
    boxes = _detector_boxes(args.boxes, files)
    det = Detector(args.model, strategy=args.strategy, weights=args.weights, zoom=args.zoom,
                   strategy_options=key_values(args.strategy_option, "--strategy-option"),
                   epochs=args.epochs, crop_size=args.crop_size, device=args.device,
                   seed=args.seed, **given(lr=args.lr, batch_size=args.batch_size))
    t0 = time.perf_counter()
    det.fit([str(f) for f in files], boxes, label_column=args.label_column)
    log.info("trained %s (%s) on %d boxes in %d images in %.1f s", args.model, args.strategy,
             det.n_train_boxes_, det.n_train_images_, time.perf_counter() - t0)
    det.save(args.output, overwrite=args.overwrite)
    log.info("detector written to %s", args.output)


def cmd_detect(args):
    from ..catalog import write_regions, write_table
    from ..detect import Detector

    formats = check_outputs(args, kind="table", regions="regions")
    if args.overlap >= args.tile:
        raise InputError(f"--overlap ({args.overlap}) must be less than --tile ({args.tile}).")
    scheduler, workers = scheduler_of(args)
    image = load_image_arg(args)
    if formats.get("regions") == "crtf" and image.wcs is None:
        raise InputError(f"--regions {args.regions}: CRTF regions are in sky coordinates and "
                         f"{image.source} has no WCS; write .reg (DS9, pixel coordinates).")
    det = Detector.load(args.model, device=args.device)
    t0 = time.perf_counter()
    table = det.predict(image, tile=args.tile, overlap=args.overlap,
                        score_threshold=args.score_threshold,
                        iou_threshold=args.iou_threshold, **given(batch_size=args.batch_size),
                        scheduler=scheduler, workers=workers)
    log.info("%d detections in %s (%d tiles) in %.1f s", len(table), image.source,
             table.meta.get("n_tiles", 1), time.perf_counter() - t0)
    if args.regions is not None:  # first: written atomically, it fails before the table
        write_regions(table, args.regions, format=formats["regions"], shape="box",
                      wcs=image.wcs, overwrite=args.overwrite, **region_style_of(args))
        log.info("regions written to %s", args.regions)
    write_table(table, args.output, overwrite=args.overwrite)
    log.info("detections written to %s", args.output)
