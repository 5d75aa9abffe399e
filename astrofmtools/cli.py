# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The ``astrofm`` command: thin calls into the library.

Exit codes: 0 success, 2 bad usage or input (one line on stderr; the
traceback only with ``-v``), 1 internal error.
"""

import argparse
import logging
import sys
import time

import numpy as np

from . import __version__
from .exceptions import InputError

__all__ = ["main"]

log = logging.getLogger("astrofmtools")

_EPILOG = {
    "sources": "example:\n  astrofm sources mosaic.fits -o sources.ecsv --regions sources.reg",
    "cutouts": "examples:\n  astrofm cutouts mosaic.fits sources.ecsv -o cutouts.fits --size 64\n"
               "  astrofm cutouts first.fits sources.ecsv --band wise_w1.fits -o cutouts.fits",
    "info": "example:\n  astrofm info mosaic.fits",
    "demo": "example:\n  astrofm demo -o astrofm-demo",
    "embed": "example:\n  astrofm embed cutouts.fits -o features.fits --model efficientnet_lite0",
    "similar": "examples:\n  astrofm similar features.fits --query 42 -k 8 -o similar.png\n"
               "  astrofm similar features.fits --position \"150.1 2.2\" --cutouts cutouts.fits "
               "-o similar.png --table similar.ecsv",
    "attention": "example:\n  astrofm attention cutouts.fits --model dinov2_vits14 "
                 "-o attention.png --rows 0:8 --crop 1 --crop auto",
    "map": "examples:\n  astrofm map features.fits --color class -o umap.png --table umap.ecsv\n"
           "  astrofm map sample.fits --fit-on survey.fits --labels labels.ecsv "
           "--label-column class -o sample_umap.png",
    "train": "example:\n  astrofm train cutouts.fits --labels labels.ecsv --label-column class "
             "--model efficientnet_lite0 --strategy frozen -o model_dir/",
    "classify": "example:\n  astrofm classify cutouts.fits --model model_dir/ -o predictions.ecsv "
                "--regions predictions.reg",
    "train-detector": "examples:\n  astrofm train-detector images/ --boxes boxes.ecsv "
                      "--model resnet50 -o det_dir/\n"
                      "  astrofm train-detector images/ --boxes regions/ "
                      "--label-column label -o det_dir/\n  astrofm train-detector field.fits "
                      "--boxes find_sources --strategy frozen -o det_dir/",
    "detect": "example:\n  astrofm detect mosaic.fits --model det_dir/ -o detections.ecsv "
              "--regions detections.reg --tile 512 --overlap 64",
    "crossmatch": "examples:\n"
                  "  astrofm crossmatch predictions.ecsv reference.fits --max-sep 5arcsec "
                  "-o matched.ecsv\n"
                  "  astrofm crossmatch sources.ecsv nvss.vot --max-sep 0.25arcmin --mode all "
                  "--keep-unmatched -o matched.fits",
}


def _common(parser, output=True, output_help="output file"):
    group = parser.add_argument_group("common options")
    if output:
        group.add_argument("-o", "--output", required=True, help=output_help)
        group.add_argument("--overwrite", action="store_true",
                           help="replace existing output files")
    verbosity = group.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true",
                           help="say more; show tracebacks on errors")
    verbosity.add_argument("-q", "--quiet", action="store_true",
                           help="print nothing but errors; no progress bars")


def _image_options(parser):
    parser.add_argument("image", help="FITS image (any HDU; radio cubes with length-1 axes)")
    parser.add_argument("--hdu", default=None,
                        help="HDU index or EXTNAME (default: first HDU with image data)")
    parser.add_argument("--plane", default=None,
                        help="for cubes: 0-based plane index, comma-separated for several axes")


def _model_options(parser):
    parser.add_argument("--model", default="efficientnet_lite0",
                        help="backbone name (see astrofmtools.backbones.list_backbones; "
                             "default: efficientnet_lite0, which needs no download)")
    parser.add_argument("--weights", default=None,
                        help="backbone weights file (.safetensors or .pth), or 'random'")
    parser.add_argument("--batch-size", type=int, default=None, help="images per batch")
    parser.add_argument("--device", default=None,
                        help="torch device, e.g. cpu or cuda (default: cuda if available)")


def _parse_hdu(text):
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def _parse_plane(text):
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--plane must be integers separated by commas, not {text!r}.") from None
    return values[0] if len(values) == 1 else values


def _load(args):
    from .io import load_image
    return load_image(args.image, hdu=_parse_hdu(args.hdu), plane=_parse_plane(args.plane))


def build_parser():
    """The argument parser of the ``astrofm`` command."""
    parser = argparse.ArgumentParser(
        prog="astrofm",
        description="Foundation-model tools for astronomical FITS images.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"astrofmtools {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name, help_):
        return sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".",
                              epilog=_EPILOG[name],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add("sources", "find sources in a FITS image and write a catalogue (and regions)")
    _image_options(p)
    p.add_argument("--snr", type=float, default=5.0,
                   help="detection threshold in units of the matched-filtered noise "
                        "(default: 5)")
    p.add_argument("--psf-fwhm", type=float, default=None,
                   help="beam/PSF FWHM in pixels (default: from BMAJ/BMIN or the survey)")
    p.add_argument("--no-deblend", action="store_true", help="do not split blended islands")
    p.add_argument("--regions", default=None, help="also write a region file (.reg or .crtf)")
    p.add_argument("--region-shape", default="ellipse", choices=["circle", "box", "ellipse"],
                   help="shape of the regions (default: ellipse)")
    p.add_argument("--background-map", default=None,
                   help="also write the background and RMS maps to this FITS file")
    _common(p, output_help="catalogue (.ecsv, .fits or .vot)")

    p = add("cutouts", "cut stamps around the sources of a table out of a FITS image")
    _image_options(p)
    p.add_argument("table", help="source table with x/y (0-based pixels) or sky columns")
    p.add_argument("--size", default="64",
                   help="cutout side in pixels, or 'bbox' for a close crop around each "
                        "source's bounding box (default: 64)")
    p.add_argument("--output-size", type=int, default=None,
                   help="resize every cutout to this side (default: no resizing, or 64 "
                        "with --size bbox)")
    p.add_argument("--band", action="append", default=[], metavar="FITS",
                   help="another image of the same sky, reprojected onto IMAGE's grid and "
                        "cut as an extra channel (repeatable)")
    p.add_argument("--band-method", default="interp", choices=["interp", "exact", "adaptive"],
                   help="reprojection of --band images (default: interp; exact conserves "
                        "flux)")
    _common(p, output_help="multi-extension FITS file of the cutouts")

    p = add("info", "describe what the loader sees in a FITS file")
    _image_options(p)
    _common(p, output=False)

    p = add("embed", "foundation-model features of every cutout of a stack")
    p.add_argument("cutouts", help="cutout stack written by 'astrofm cutouts'")
    _model_options(p)
    p.add_argument("--pooling", default="cls", choices=["cls", "mean", "cls+mean"],
                   help="how tokens become one vector (ViTs; CNNs pool globally)")
    p.add_argument("--tta", action="store_true",
                   help="average features over the 8 flips and 90-degree rotations")
    p.add_argument("--no-cache", action="store_true", help="do not use the feature cache")
    _common(p, output_help="features file (FITS: features + the cutouts' table)")

    p = add("map", "map sources by their features (PCA then UMAP) as a PNG and a table")
    p.add_argument("features", help="features file written by 'astrofm embed'")
    p.add_argument("--color", default=None,
                   help="column to colour by: classes get a legend, numbers a colour bar")
    p.add_argument("--labels", default=None,
                   help="table holding the colour column, matched on 'id' (or row-aligned)")
    p.add_argument("--label-column", default=None,
                   help="column of --labels to use (default: --color)")
    p.add_argument("--fit-on", default=None, metavar="FEATURES",
                   help="fit the map on these features (e.g. a whole survey) and place "
                        "FEATURES in it")
    p.add_argument("--n-components", default="10",
                   help="PCA components before UMAP: a number, a variance fraction in (0, 1), "
                        "or 'none' (default: 10)")
    p.add_argument("--neighbors", type=int, default=15, help="UMAP n_neighbors (default: 15)")
    p.add_argument("--min-dist", type=float, default=0.1, help="UMAP min_dist (default: 0.1)")
    p.add_argument("--metric", default="euclidean", help="UMAP metric (default: euclidean)")
    p.add_argument("--normalize", default="l2", choices=["l2", "standard", "none"],
                   help="scaling before PCA (default: l2, every vector to unit length)")
    p.add_argument("--balance", nargs="?", type=int, const=True, default=False, metavar="N",
                   help="fit on an equal number of each class of --color (the smallest "
                        "class size, or N), then place all sources")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--color-as", default="auto", choices=["auto", "classes", "values"],
                   help="draw --color as classes or as values with a colour bar "
                        "(default: from the column)")
    p.add_argument("--log-color", action="store_true", help="logarithmic colour scale")
    p.add_argument("--title", default=None, help="figure title")
    p.add_argument("--table", default=None, help="also write the map table (.ecsv, .fits, .vot)")
    _common(p, output_help="PNG of the map")

    p = add("train", "train a classifier of cutouts on a foundation-model backbone")
    p.add_argument("cutouts", help="cutout stack written by 'astrofm cutouts'")
    p.add_argument("--labels", default=None,
                   help="table of labels, row-aligned with the cutouts or sharing their 'id' "
                        "column (default: the label column of the cutouts' own table)")
    p.add_argument("--label-column", default="label", help="column holding the classes")
    _model_options(p)
    p.add_argument("--strategy", default="frozen",
                   choices=["frozen", "partial", "finetune", "lora"],
                   help="how the backbone adapts (default: frozen)")
    p.add_argument("--head", default="linear",
                   choices=["linear", "mlp", "whitening", "knn", "logistic"],
                   help="classification head (default: linear)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--label-fraction", type=float, default=1.0,
                   help="use this fraction of the labels (per class, seeded)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _common(p, output_help="model folder (config + safetensors weights)")

    p = add("classify", "classify cutouts with a trained model folder")
    p.add_argument("cutouts", help="cutout stack written by 'astrofm cutouts'")
    p.add_argument("--model", required=True, help="model folder written by 'astrofm train'")
    p.add_argument("--batch-size", type=int, default=None, help="images per batch")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.add_argument("--regions", default=None,
                   help="also write regions coloured by class (.reg or .crtf)")
    _common(p, output_help="predictions table (.ecsv, .fits or .vot)")

    p = add("crossmatch", "match the rows of a table with the sources of a reference catalogue "
                          "on the sky")
    p.add_argument("table", help="table to match (.ecsv, .fits, .vot or .csv) with sky positions")
    p.add_argument("reference", help="reference catalogue (.ecsv, .fits, .vot or .csv)")
    p.add_argument("--max-sep", default="5arcsec",
                   help="largest separation of a match: 5arcsec, 5\", 0.5arcmin, or a number "
                        "of arcsec (default: 5arcsec)")
    p.add_argument("--mode", default="best", choices=["best", "one-to-one", "nearest", "all"],
                   help="best (= one-to-one): each row and each reference source matched at "
                        "most once, closest pairs first; nearest: each row its nearest "
                        "reference source; all: every pair within --max-sep (default: best)")
    p.add_argument("--keep-unmatched", action="store_true",
                   help="keep rows without a match (reference columns left empty)")
    p.add_argument("--suffix", default="_ref",
                   help="appended to reference column names that TABLE also has "
                        "(default: _ref)")
    p.add_argument("--sky", default=None,
                   help="positions in TABLE: a SkyCoord column or RA,DEC column names "
                        "(default: sky_centroid, ra/dec, RAJ2000/DEJ2000, ... found by name)")
    p.add_argument("--ref-sky", default=None, help="positions in REFERENCE, as --sky")
    p.add_argument("--ref-columns", default=None,
                   help="comma-separated reference columns to copy (default: all)")
    _common(p, output_help="matched table (.ecsv, .fits, .vot or .csv)")

    p = add("similar", "find the sources whose features are most similar to a query")
    p.add_argument("features", help="features file written by 'astrofm embed'")
    group = p.add_argument_group("the query (one kind)")
    group.add_argument("--query", action="append", default=[], metavar="ID",
                       help="a source id (the 'id' column of the features' table); repeatable")
    group.add_argument("--position", default=None, metavar="'RA DEC'",
                       help="a sky position (ICRS; degrees, or sexagesimal as '10:00:24 "
                            "+02:12:00'): the nearest source is the query")
    group.add_argument("--ra", type=float, default=None, help="with --dec: a position in degrees")
    group.add_argument("--dec", type=float, default=None, help="with --ra: a position in degrees")
    group.add_argument("--image", default=None, metavar="FITS",
                       help="a new cutout (FITS image), embedded as the features were")
    p.add_argument("-k", type=int, default=8, help="neighbours per query (default: 8)")
    p.add_argument("--max-sep", default=None,
                   help="for a position: refuse a nearest source further than this (e.g. "
                        "5arcsec; a number is arcsec)")
    p.add_argument("--cutouts", default=None,
                   help="the cutouts the features were made from (default: the file the "
                        "features file records)")
    p.add_argument("--table", default=None,
                   help="also write the neighbours table (.ecsv, .fits or .vot)")
    p.add_argument("--weights", default=None,
                   help="for --image: the backbone's weights file (default: as recorded)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    _common(p, output_help="PNG grid of each query and its neighbours")

    p = add("attention", "draw the CLS attention of a ViT backbone over cutouts, head by head")
    p.add_argument("cutouts", help="cutout stack written by 'astrofm cutouts'")
    p.add_argument("--model", default="dinov2_vits14",
                   help="a ViT backbone name (default: dinov2_vits14)")
    p.add_argument("--weights", default=None,
                   help="backbone weights file (.safetensors or .pth), or 'random'")
    p.add_argument("--rows", default="0:8",
                   help="the cutouts to draw: 0-based rows as start:stop or a comma-separated "
                        "list (default: 0:8)")
    p.add_argument("--crop", action="append", default=None,
                   help="zoom of the central crop (1: the whole cutout; 'auto': the median "
                        "source spans a patch); repeat to compare side by side (default: 1)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    _common(p, output_help="PNG grid: per cutout the image, the mean and each head's map")

    p = add("train-detector", "train a source detector (Faster R-CNN on a foundation-model "
                              "backbone) on FITS images and their boxes")
    p.add_argument("images", nargs="+", help="FITS images, or folders of them")
    p.add_argument("--boxes", default="find_sources",
                   help="a table (.ecsv, .fits, .vot) of boxes with an 'image' column naming "
                        "each row's file (bbox_* pixel columns, or sky positions with sizes); "
                        "or a folder of per-image .reg/.crtf/.ecsv files with the images' "
                        "names; or 'find_sources' for pseudo-labels (default)")
    p.add_argument("--label-column", default=None,
                   help="column (or region tag 'label') holding the classes (default: one "
                        "class, 'source')")
    _model_options(p)
    p.add_argument("--strategy", default="finetune", choices=["finetune", "frozen"],
                   help="train the whole backbone (finetune, default) or only the pyramid "
                        "and heads (frozen)")
    p.add_argument("--epochs", type=int, default=20, help="passes over the images (default: 20)")
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--zoom", default="auto",
                   help="model pixels per image pixel, or 'auto' (default): the median box "
                        "covers a ViT patch or 16 pixels")
    p.add_argument("--crop-size", type=int, default=256,
                   help="side of the training crops in model pixels (default: 256)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _common(p, output_help="detector folder (config.json + model.safetensors)")

    p = add("detect", "detect sources in a FITS image or mosaic of any size with a trained "
                      "detector")
    _image_options(p)
    p.add_argument("--model", required=True,
                   help="detector folder written by 'astrofm train-detector'")
    p.add_argument("--tile", type=int, default=512, help="tile side in pixels (default: 512)")
    p.add_argument("--overlap", type=int, default=64,
                   help="pixels shared by neighbouring tiles; more than the largest source "
                        "(default: 64)")
    p.add_argument("--score-threshold", type=float, default=0.5,
                   help="keep detections scoring at least this (default: 0.5)")
    p.add_argument("--iou-threshold", type=float, default=0.3,
                   help="overlap above which boxes are duplicates (default: 0.3)")
    p.add_argument("--batch-size", type=int, default=4, help="tiles per batch (default: 4)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.add_argument("--regions", default=None, help="also write box regions (.reg or .crtf)")
    _common(p, output_help="detections table (.ecsv, .fits or .vot)")

    p = add("demo", "run the whole chain on the example image that ships with the package")
    p.add_argument("--image", default=None,
                   help="run on this FITS image instead of the shipped example")
    p.add_argument("--no-ml", action="store_true",
                   help="skip the foundation-model stages (features, classes, feature map)")
    _model_options(p)
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _common(p, output_help="output folder (refused if it exists, unless --overwrite)")
    return parser


def _cmd_sources(args):
    from .background import estimate_background
    from .catalog import write_regions, write_table
    from .sources import find_sources
    from .utils import check_output_path

    check_output_path(args.output, args.overwrite)
    for extra in (args.regions, args.background_map):
        if extra is not None:
            check_output_path(extra, args.overwrite)
    image = _load(args)
    t0 = time.perf_counter()
    # a memory-mapped mosaic gets its background tile by tile inside find_sources
    in_memory = image.mask is not None
    background = estimate_background(image) if in_memory or args.background_map else None
    table = find_sources(image, snr=args.snr, psf_fwhm=args.psf_fwhm,
                         deblend=not args.no_deblend, background=background)
    log.info("%d sources found in %s in %.1f s", len(table), image.source,
             time.perf_counter() - t0)
    write_table(table, args.output, overwrite=args.overwrite)
    log.info("catalogue written to %s", args.output)
    if args.background_map is not None:
        background.write(args.background_map, overwrite=args.overwrite)
        log.info("background and RMS maps written to %s", args.background_map)
    if args.regions is not None:
        write_regions(table, args.regions, shape=args.region_shape, wcs=image.wcs,
                      overwrite=args.overwrite)
        log.info("regions written to %s", args.regions)


def _cmd_cutouts(args):
    from .catalog import read_table
    from .cutouts import make_cutouts
    from .utils import check_output_path

    check_output_path(args.output, args.overwrite)
    size = args.size
    if size != "bbox":
        try:
            size = int(size)
        except ValueError:
            raise InputError(f"--size must be a number of pixels or 'bbox', not {size!r}.") \
                from None
    output_size = args.output_size
    if size == "bbox" and output_size is None:
        output_size = 64
    image = _load(args)
    if args.band:
        from .io import load_bands
        image = load_bands([image] + list(args.band), reference=0, method=args.band_method)
    table = read_table(args.table)
    stack = make_cutouts(image, table, size=size, output_size=output_size)
    stack.write(args.output, overwrite=args.overwrite)
    log.info("%d cutouts of %s%s written to %s", len(stack), "x".join(
        str(n) for n in stack.data.shape[-2:]),
        f" in {image.n_bands} bands" if image.n_bands > 1 else "", args.output)


def _read_stack(path):
    from .cutouts import CutoutStack
    return CutoutStack.read(path)


def _cmd_embed(args):
    from .backbones import load_backbone
    from .embed import embed
    from .utils import check_output_path

    check_output_path(args.output, args.overwrite)
    stack = _read_stack(args.cutouts)
    backbone = load_backbone(args.model, weights=args.weights, device=args.device)
    kwargs = {} if args.batch_size is None else {"batch_size": args.batch_size}
    embedding = embed(stack, model=backbone, pooling=args.pooling, device=args.device,
                      cache=not args.no_cache, tta=args.tta, **kwargs)
    embedding.meta["cutouts"] = str(args.cutouts)
    embedding.write(args.output, overwrite=args.overwrite)
    log.info("%d x %d features from %s written to %s", *embedding.features.shape,
             backbone.spec.name, args.output)


def _cmd_map(args):
    from .embed import umap_map

    text = args.n_components.strip().lower()
    try:
        n_components = None if text == "none" else float(text) if "." in text else int(text)
    except ValueError:
        raise InputError(f"--n-components must be a number, a fraction in (0, 1) or 'none', "
                         f"not {args.n_components!r}.") from None
    table = umap_map(args.features, color=args.color, fit_on=args.fit_on, labels=args.labels,
                     label_column=args.label_column, n_components=n_components,
                     n_neighbors=args.neighbors, min_dist=args.min_dist, metric=args.metric,
                     normalize=None if args.normalize == "none" else args.normalize,
                     balance=args.balance, seed=args.seed, path=args.output,
                     table_path=args.table, overwrite=args.overwrite,
                     categorical={"auto": None, "classes": True, "values": False}[args.color_as],
                     log_color=args.log_color, title=args.title)
    log.info("map of %d sources (%d fitted) written to %s%s", len(table),
             int(table["map_fit"].sum()), args.output,
             f" and {args.table}" if args.table else "")


def _labels_for(stack, args):
    """The label of every cutout, from the stack's table or a separate table."""
    from .catalog import read_table
    column = args.label_column
    if args.labels is None:
        if column not in stack.table.colnames:
            raise InputError(f"The cutouts' table of {args.cutouts} has no column {column!r} "
                             f"(its columns: {', '.join(stack.table.colnames)}); name it with "
                             "--label-column or give --labels.")
        return stack.table[column]
    labels = read_table(args.labels)
    if column not in labels.colnames:
        raise InputError(f"{args.labels} has no column {column!r}; its columns: "
                         f"{', '.join(labels.colnames)}.")
    if "id" in labels.colnames and "id" in stack.table.colnames:
        lookup = {int(i): v for i, v in zip(labels["id"], labels[column])}
        missing = [int(i) for i in stack.table["id"] if int(i) not in lookup]
        if missing:
            raise InputError(f"{args.labels} has no label for id(s) {missing[:10]} of "
                             f"{args.cutouts}.")
        return [lookup[int(i)] for i in stack.table["id"]]
    if len(labels) != len(stack):
        raise InputError(f"{args.labels} has {len(labels)} rows and {args.cutouts} {len(stack)} "
                         "cutouts; give both an 'id' column or keep them row-aligned.")
    return labels[column]


def _cmd_train(args):
    from .classify import Classifier
    from .utils import check_output_path

    check_output_path(args.output, args.overwrite, kind="folder")
    stack = _read_stack(args.cutouts)
    labels = _labels_for(stack, args)
    options = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr),
                                 ("batch_size", args.batch_size)) if v is not None}
    clf = Classifier(args.model, head=args.head, strategy=args.strategy, weights=args.weights,
                     label_fraction=args.label_fraction, seed=args.seed, device=args.device,
                     **options)
    t0 = time.perf_counter()
    clf.fit(stack, labels)
    log.info("trained %s/%s on %s (%d of %d parameters trainable) in %.1f s", args.strategy,
             args.head, args.model, clf.n_trainable_, clf.n_parameters_,
             time.perf_counter() - t0)
    clf.save(args.output, overwrite=args.overwrite)
    log.info("model written to %s", args.output)


def _cmd_classify(args):
    from .catalog import write_regions, write_table
    from .classify import Classifier
    from .utils import check_output_path

    check_output_path(args.output, args.overwrite)
    if args.regions is not None:
        check_output_path(args.regions, args.overwrite)
    clf = Classifier.load(args.model, device=args.device)
    if args.batch_size is not None:
        clf.batch_size = args.batch_size
    stack = _read_stack(args.cutouts)
    table = clf.predict(stack)
    write_table(table, args.output, overwrite=args.overwrite)
    counts = dict(zip(*np.unique(np.asarray(table["label"]).astype(str), return_counts=True)))
    log.info("%d cutouts classified (%s); written to %s", len(table),
             ", ".join(f"{k}: {v}" for k, v in counts.items()), args.output)
    if args.regions is not None:
        write_regions(table, args.regions, wcs=stack.image_wcs, overwrite=args.overwrite)
        log.info("regions written to %s", args.regions)


def _cmd_crossmatch(args):
    from .catalog import crossmatch, write_table
    from .utils import check_output_path

    check_output_path(args.output, args.overwrite)
    columns = None
    if args.ref_columns is not None:
        columns = [name.strip() for name in args.ref_columns.split(",") if name.strip()]
    t0 = time.perf_counter()
    matched = crossmatch(args.table, args.reference, max_sep=args.max_sep, mode=args.mode,
                         keep_unmatched=args.keep_unmatched, suffix=args.suffix, sky=args.sky,
                         ref_sky=args.ref_sky, ref_columns=columns)
    info = [v for k, v in matched.meta.items() if str(k).startswith("crossmatch")][-1]
    write_table(matched, args.output, overwrite=args.overwrite)
    log.info("%d of %d rows of %s matched to %s within %g arcsec (%s mode, %d pairs) in %.1f s;"
             " written to %s", info["n_matched_rows"], info["n_table"], args.table,
             args.reference, info["max_sep_arcsec"], info["mode"], info["n_pairs"],
             time.perf_counter() - t0, args.output)


def _cmd_info(args):
    from .background import global_noise
    image = _load(args)
    print(describe_image(image, global_noise(image)))


def describe_image(image, noise=None):
    """Lines of text describing a loaded image (used by ``astrofm info``)."""
    import astropy.units as u
    lines = [f"source:      {image.source}",
             f"shape:       {image.shape[1]} x {image.shape[0]} pixels (x by y)",
             f"dtype:       {image.data.dtype}",
             f"unit:        {image.unit if image.unit is not None else '(none: no BUNIT)'}"]
    if image.header is not None and image.header.get("NAXIS", 2) > 2:
        lines.append(f"axes:        NAXIS={image.header['NAXIS']} in the file; "
                     "length-1 axes dropped")
    if image.wcs is not None:
        centre = image.wcs.pixel_to_world((image.shape[1] - 1) / 2, (image.shape[0] - 1) / 2)
        style = "hmsdms" if centre.frame.name in ("icrs", "fk5", "fk4") else "decimal"
        text = centre.to_string(style, precision=5 if style == "decimal" else 2)
        lines += [f"wcs:         {' '.join(image.wcs.wcs.ctype)}",
                  f"centre:      {text} ({centre.frame.name})",
                  f"pixel scale: {image.pixel_scale.to_value(u.arcsec):.4g} arcsec"]
    else:
        lines.append("wcs:         none (pixel-only work; sky outputs need a WCS)")
    if image.beam is not None:
        b = image.beam
        lines.append(f"beam:        {b.major.to_value(u.arcsec):.3g}\" x "
                     f"{b.minor.to_value(u.arcsec):.3g}\", PA {b.pa.to_value(u.deg):.3g} deg")
    else:
        lines.append("beam:        unknown (no BMAJ/BMIN)")
    if image.mask is not None:
        lines.append(f"no data:     {int(image.mask.sum())} pixels (NaN or BLANK)")
    if noise is not None:
        lines.append(f"noise:       {noise.std:.4g} (sigma-clipped std), "
                     f"median {noise.median:.4g}")
    return "\n".join(lines)


def _similar_query(args, emb):
    """The query of ``astrofm similar``: ids, a SkyCoord or an image."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    kinds = [name for name, given in (("--query", args.query), ("--position", args.position),
                                      ("--ra/--dec", args.ra is not None or args.dec is not None),
                                      ("--image", args.image)) if given]
    if len(kinds) != 1:
        given = f" (not {' and '.join(kinds)})" if kinds else ""
        raise InputError("Give one query: --query ID, --position 'RA DEC', --ra and --dec, or "
                         f"--image FITS{given}.")
    if args.query:
        integer = emb.table["id"].dtype.kind in "iu"
        try:
            return [int(q) if integer else q for q in args.query]
        except ValueError:
            raise InputError(f"--query must be integer source ids here, not "
                             f"{args.query}.") from None
    if args.image:
        from .io import load_image
        return np.asarray(load_image(args.image).data, dtype=np.float32)
    if args.position is None:
        if args.ra is None or args.dec is None:
            raise InputError("--ra and --dec go together.")
        return SkyCoord(args.ra * u.deg, args.dec * u.deg, frame="icrs")
    text = args.position.strip()
    sexagesimal = any(c in text for c in ":hms")
    try:
        return SkyCoord(text, unit=(u.hourangle, u.deg) if sexagesimal else (u.deg, u.deg),
                        frame="icrs")
    except (ValueError, u.UnitsError):
        raise InputError(f"--position {text!r} is not 'RA DEC' (degrees, or hours and degrees "
                         "in sexagesimal).") from None


def _cmd_similar(args):
    import astropy.units as u
    from pathlib import Path
    from .catalog import write_table
    from .embed import Embedding, similar
    from .utils import check_output_path

    check_output_path(args.output, args.overwrite)
    if args.table is not None:
        check_output_path(args.table, args.overwrite)
    emb = Embedding.read(args.features)
    query = _similar_query(args, emb)
    max_sep = None
    if args.max_sep is not None:
        try:
            max_sep = u.Quantity(args.max_sep)
            max_sep = max_sep * u.arcsec if max_sep.unit == u.one else max_sep.to(u.arcsec)
        except (TypeError, ValueError, u.UnitsError):
            raise InputError(f"--max-sep must be an angle such as 5arcsec, not "
                             f"{args.max_sep!r}.") from None
    cutouts = args.cutouts
    if cutouts is None:
        cutouts = emb.meta.get("cutouts")
        if not cutouts or not Path(cutouts).is_file():
            raise InputError(f"The picture needs the cutouts the features were made from: "
                             f"{args.features} records {cutouts!r}, which is not a file here; "
                             "name them with --cutouts.")
    model = None
    if args.weights is not None:
        from .backbones import load_backbone
        model = load_backbone(emb.meta.get("backbone"), weights=args.weights,
                              device=args.device, in_chans=int(emb.meta.get("in_chans", 3)))
    table = similar(emb, query, k=args.k, output=args.output, cutouts=cutouts, model=model,
                    max_separation=max_sep, device=args.device, overwrite=args.overwrite)
    log.info("%d queries, %d neighbours each, drawn in %s", len(table.meta["queries"]), args.k,
             args.output)
    if args.table is not None:
        write_table(table, args.table, overwrite=args.overwrite)
        log.info("neighbours written to %s", args.table)


def _parse_rows(text, n):
    """0-based rows from 'start:stop' or '1,4,7', checked against n."""
    try:
        if ":" in text:
            parts = [int(p) if p.strip() else None for p in text.split(":")]
            if len(parts) > 3:
                raise ValueError
            rows = list(range(n))[slice(*parts)]
        else:
            rows = [int(p) for p in text.split(",")]
    except ValueError:
        raise InputError(f"--rows must be start:stop or comma-separated integers, not "
                         f"{text!r}.") from None
    bad = [r for r in rows if not -n <= r < n]
    if bad or not rows:
        raise InputError(f"--rows {text!r} selects {'rows ' + str(bad) if bad else 'nothing'} "
                         f"of {n} cutouts.")
    return rows


def _cmd_attention(args):
    from .embed import attention_maps
    from .utils import check_output_path

    check_output_path(args.output, args.overwrite)
    stack = _read_stack(args.cutouts)
    rows = _parse_rows(args.rows, len(stack))
    crops = []
    for value in args.crop or ["1"]:
        try:
            crops.append(value if value == "auto" else float(value))
        except ValueError:
            raise InputError(f"--crop must be a number >= 1 or 'auto', not {value!r}.") from None
    attention_maps(stack[rows], model=args.model, weights=args.weights, crop=crops,
                   output=args.output, device=args.device, overwrite=args.overwrite)
    log.info("attention maps of %d cutouts from %s drawn in %s", len(rows), args.model,
             args.output)


_IMAGE_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")
_BOX_SUFFIXES = (".reg", ".ds9", ".crtf", ".ecsv", ".vot", ".xml", ".csv")


def _image_files(items):
    """FITS files from the command line: files as given, folders expanded (sorted)."""
    from pathlib import Path
    files = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.is_file() and p.name.lower().endswith(_IMAGE_SUFFIXES))
            if not found:
                raise InputError(f"Folder {item} holds no FITS image "
                                 f"({', '.join(_IMAGE_SUFFIXES)}).")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"Image {item} does not exist.")
    return files


def _detector_boxes(boxes, files):
    """The --boxes of train-detector: 'find_sources', a table, or one file per image."""
    from pathlib import Path
    from .catalog import read_table
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


def _cmd_train_detector(args):
    from .detect import Detector
    from .utils import check_output_path

    check_output_path(args.output, args.overwrite, kind="folder")
    files = _image_files(args.images)
    boxes = _detector_boxes(args.boxes, files)
    zoom = args.zoom
    if zoom != "auto":
        try:
            zoom = float(zoom)
        except ValueError:
            raise InputError(f"--zoom must be a number or 'auto', not {zoom!r}.") from None
    options = {k: v for k, v in (("lr", args.lr), ("batch_size", args.batch_size))
               if v is not None}
    det = Detector(args.model, strategy=args.strategy, weights=args.weights, zoom=zoom,
                   epochs=args.epochs, crop_size=args.crop_size, device=args.device,
                   seed=args.seed, **options)
    t0 = time.perf_counter()
    det.fit([str(f) for f in files], boxes, label_column=args.label_column)
    log.info("trained %s (%s) on %d boxes in %d images in %.1f s", args.model, args.strategy,
             det.n_train_boxes_, det.n_train_images_, time.perf_counter() - t0)
    det.save(args.output, overwrite=args.overwrite)
    log.info("detector written to %s", args.output)


def _cmd_detect(args):
    from .catalog import write_regions, write_table
    from .detect import Detector
    from .utils import check_output_path

    check_output_path(args.output, args.overwrite)
    if args.regions is not None:
        check_output_path(args.regions, args.overwrite)
    det = Detector.load(args.model, device=args.device)
    image = _load(args)
    t0 = time.perf_counter()
    table = det.predict(image, tile=args.tile, overlap=args.overlap,
                        score_threshold=args.score_threshold,
                        iou_threshold=args.iou_threshold, batch_size=args.batch_size)
    log.info("%d detections in %s (%d tiles) in %.1f s", len(table), image.source,
             table.meta.get("n_tiles", 1), time.perf_counter() - t0)
    write_table(table, args.output, overwrite=args.overwrite)
    log.info("detections written to %s", args.output)
    if args.regions is not None:
        write_regions(table, args.regions, shape="box", wcs=image.wcs, overwrite=args.overwrite)
        log.info("regions written to %s", args.regions)


def _cmd_demo(args):
    from .pipeline import run_pipeline
    from .datasets import example_image_path
    kwargs = {} if args.batch_size is None else {"batch_size": args.batch_size}
    result = run_pipeline(args.image or example_image_path(), args.output, model=args.model,
                          weights=args.weights, ml=False if args.no_ml else None, seed=args.seed,
                          device=args.device, overwrite=args.overwrite, **kwargs)
    if not args.quiet:
        print(result.summary)


def _configure_logging(level):
    """Messages of astrofmtools only (not of matplotlib & co.) to stderr."""
    log.setLevel(level)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("astrofm: %(message)s"))
    log.addHandler(handler)


_COMMANDS = {"sources": _cmd_sources, "cutouts": _cmd_cutouts, "info": _cmd_info,
             "embed": _cmd_embed, "map": _cmd_map, "train": _cmd_train, "classify": _cmd_classify,
             "demo": _cmd_demo,
             "train-detector": _cmd_train_detector, "detect": _cmd_detect,
             "similar": _cmd_similar, "attention": _cmd_attention, "crossmatch": _cmd_crossmatch}


def main(argv=None):
    """
    Run the ``astrofm`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    code : int
        0 on success, 2 for bad usage or input, 1 for an internal error.

    Examples
    --------
    >>> from astrofmtools.cli import main
    >>> main(["info", "missing.fits"])
    2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose else logging.INFO)
    _configure_logging(level)
    from .utils.progress import set_progress
    set_progress(not args.quiet)
    try:
        _COMMANDS[args.command](args)
    except InputError as exc:
        if args.verbose:
            raise
        print(f"astrofm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("astrofm: interrupted", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if args.verbose:
            raise
        print(f"astrofm {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(run with -v for the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
