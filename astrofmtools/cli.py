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
    "train": "example:\n  astrofm train cutouts.fits --labels labels.ecsv --label-column class "
             "--model efficientnet_lite0 --strategy frozen -o model_dir/",
    "classify": "example:\n  astrofm classify cutouts.fits --model model_dir/ -o predictions.ecsv "
                "--regions predictions.reg",
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

    p = add("demo", "run the whole chain on the example image that ships with the package")
    p.add_argument("--image", default=None,
                   help="run on this FITS image instead of the shipped example")
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
    from .backbones import extract_features, load_backbone, write_features
    from .utils import check_output_path

    check_output_path(args.output, args.overwrite)
    stack = _read_stack(args.cutouts)
    backbone = load_backbone(args.model, weights=args.weights, device=args.device)
    kwargs = {} if args.batch_size is None else {"batch_size": args.batch_size}
    features = extract_features(backbone, stack, pooling=args.pooling, device=args.device,
                                cache=not args.no_cache, tta=args.tta, **kwargs)
    write_features(args.output, features, table=stack.table,
                   meta={"backbone": backbone.spec.name, "weights": backbone.weights,
                         "pooling": args.pooling, "tta": args.tta,
                         "cutouts": str(args.cutouts)},
                   overwrite=args.overwrite)
    log.info("%d x %d features from %s written to %s", *features.shape, backbone.spec.name,
             args.output)


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


def _cmd_demo(args):
    from .pipeline import run_pipeline
    from .datasets import example_image_path
    result = run_pipeline(args.image or example_image_path(), args.output,
                          overwrite=args.overwrite)
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
             "embed": _cmd_embed, "train": _cmd_train, "classify": _cmd_classify,
             "demo": _cmd_demo}


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
