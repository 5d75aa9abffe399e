# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrofm embed``, ``map``, ``similar`` and ``attention``: features and what they show."""

import logging

import numpy as np

from ..exceptions import InputError
from .inputs import check_outputs, given, parse_rows, read_stack
from .options import (RegistryChoices, add_common, non_negative_float, number_in, number_or,
                      positive_int, scheduler_of)

__all__ = ["add_parsers"]

log = logging.getLogger("astrofmtools")


def add_parsers(add):
    """Declare the subcommands of this module (``add`` as in `~astrofmtools.cli.build_parser`)."""
    p = add("embed", "foundation-model features of every cutout of a stack", cmd_embed)
    p.add_argument("cutouts", help="cutout stack written by 'astrofm cutouts'")
    p.add_argument("--pooling", default="cls", choices=["cls", "mean", "cls+mean"],
                   help="how tokens become one vector (ViTs; CNNs pool globally)")
    p.add_argument("--tta", action="store_true",
                   help="average features over the 8 flips and 90-degree rotations")
    p.add_argument("--no-cache", action="store_true", help="do not use the feature cache")
    add_common(p, "features file (FITS: features + the cutouts' table)", model=True,
               weights=True, device=True, batch_size=True, workers=True)

    p = add("map", "map sources by their features (PCA then UMAP) as a PNG and a table",
            cmd_map)
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
    p.add_argument("--n-components", default="10", type=_n_components,
                   help="PCA components before UMAP: a number, a variance fraction in (0, 1), "
                        "or 'none' (default: 10)")
    p.add_argument("--neighbors", type=number_in(2, integer=True), default=15,
                   help="UMAP n_neighbors, at least 2 (default: 15)")
    p.add_argument("--min-dist", type=non_negative_float, default=0.1,
                   help="UMAP min_dist (default: 0.1)")
    p.add_argument("--metric", default="euclidean", metavar="NAME",
                   choices=RegistryChoices("astrofmtools.embed.feature_map", "METRICS"),
                   help="UMAP metric: euclidean, cosine, correlation, manhattan, ... (any of "
                        "astrofmtools.embed.feature_map.METRICS; default: euclidean)")
    p.add_argument("--normalize", default="l2", choices=["l2", "standard", "none"],
                   help="scaling before PCA (default: l2, every vector to unit length)")
    p.add_argument("--balance", nargs="?", type=positive_int, const=True, default=False,
                   metavar="N",
                   help="fit on an equal number of each class of --color (the smallest "
                        "class size, or N), then place all sources")
    p.add_argument("--color-as", default="auto", choices=["auto", "classes", "values"],
                   help="draw --color as classes or as values with a colour bar "
                        "(default: from the column)")
    p.add_argument("--log-color", action="store_true", help="logarithmic colour scale")
    p.add_argument("--title", default=None, help="figure title")
    p.add_argument("--table", default=None, help="also write the map table (.ecsv, .fits, .vot)")
    add_common(p, "PNG of the map", seed=True)

    p = add("similar", "find the sources whose features are most similar to a query",
            cmd_similar)
    p.add_argument("features", help="features file written by 'astrofm embed'")
    group = p.add_argument_group("the query (one kind)")
    group.add_argument("--query", action="append", default=[], metavar="ID",
                       help="a source id (the 'id' column of the features' table); repeatable")
    group.add_argument("--position", default=None, metavar="'RA DEC'",
                       help="a sky position (ICRS; degrees, or sexagesimal as '10:00:24 "
                            "+02:12:00'): the nearest source is the query")
    group.add_argument("--ra", type=number_in(), default=None,
                       help="with --dec: a position in degrees")
    group.add_argument("--dec", type=number_in(-90, 90), default=None,
                       help="with --ra: a position in degrees")
    group.add_argument("--image", default=None, metavar="FITS",
                       help="a new cutout (FITS image), embedded as the features were")
    p.add_argument("-k", type=positive_int, default=8,
                   help="neighbours per query (default: 8)")
    p.add_argument("--max-sep", default=None,
                   help="for a position: refuse a nearest source further than this (e.g. "
                        "5arcsec; a number is arcsec)")
    p.add_argument("--cutouts", default=None,
                   help="the cutouts the features were made from (default: the file the "
                        "features file records)")
    p.add_argument("--table", default=None,
                   help="also write the neighbours table (.ecsv, .fits or .vot)")
    add_common(p, "PNG grid of each query and its neighbours",
               weights="for --image: the backbone's weights file (.safetensors or .pth) "
                       "(default: as the features file records)",
               device=True, batch_size=True)

    p = add("attention", "draw the CLS attention of a ViT backbone over cutouts, head by head",
            cmd_attention)
    p.add_argument("cutouts", help="cutout stack written by 'astrofm cutouts'")
    p.add_argument("--rows", default="0:8",
                   help="the cutouts to draw: 0-based rows as start:stop or a comma-separated "
                        "list (default: 0:8)")
    p.add_argument("--crop", action="append", default=None, type=number_or("auto", number_in(1)),
                   help="zoom of the central crop (1: the whole cutout; 'auto': the median "
                        "source spans a patch); repeat to compare side by side (default: 1)")
    add_common(p, "PNG grid: per cutout the image, the mean and each head's map",
               model={"default": "dinov2_vits14",
                      "help": "a ViT backbone name (default: dinov2_vits14; no ViT ships with "
                              "the package, so its weights must be on this machine: 'astrofm "
                              "models' says which file goes where). With --weights random "
                              "the figure says 'random weights: not a trained model'"},
               weights=True, device=True, batch_size=True)


def _n_components(text):
    """``--n-components``: a number of components, a variance fraction in (0, 1), or 'none'."""
    import argparse
    text = text.strip().lower()
    if text == "none":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        return number_in(0, 1, low_open=True, high_open=True)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a number of components (>= 1), a variance fraction in (0, 1) or "
            f"'none', not {text!r}") from None


def cmd_embed(args):
    from ..backbones import load_backbone
    from ..embed import embed

    check_outputs(args, kind="fits")
    stack = read_stack(args.cutouts)
    backbone = load_backbone(args.model, weights=args.weights, device=args.device)
    scheduler, workers = scheduler_of(args)
    embedding = embed(stack, model=backbone, pooling=args.pooling, device=args.device,
                      cache=not args.no_cache, tta=args.tta, scheduler=scheduler,
                      workers=workers, **given(batch_size=args.batch_size))
    embedding.meta["cutouts"] = str(args.cutouts)
    embedding.write(args.output, overwrite=args.overwrite)
    log.info("%d x %d features from %s written to %s", *embedding.features.shape,
             backbone.spec.name, args.output)


def cmd_map(args):
    from ..embed import umap_map

    check_outputs(args, kind="png", table="table")
    table = umap_map(args.features, color=args.color, fit_on=args.fit_on, labels=args.labels,
                     label_column=args.label_column, n_components=args.n_components,
                     n_neighbors=args.neighbors, min_dist=args.min_dist, metric=args.metric,
                     normalize=None if args.normalize == "none" else args.normalize,
                     balance=args.balance, seed=args.seed, path=args.output,
                     table_path=args.table, overwrite=args.overwrite,
                     categorical={"auto": None, "classes": True, "values": False}[args.color_as],
                     log_color=args.log_color, title=args.title)
    log.info("map of %d sources (%d fitted) written to %s%s", len(table),
             int(table["map_fit"].sum()), args.output,
             f" and {args.table}" if args.table else "")


def _similar_query(args, emb):
    """The query of ``astrofm similar``: ids, a SkyCoord or an image."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    kinds = [name for name, value in (("--query", args.query), ("--position", args.position),
                                      ("--ra/--dec", args.ra is not None or args.dec is not None),
                                      ("--image", args.image)) if value]
    if len(kinds) != 1:
        extra = f" (not {' and '.join(kinds)})" if kinds else ""
        raise InputError("Give one query: --query ID, --position 'RA DEC', --ra and --dec, or "
                         f"--image FITS{extra}.")
    if args.query:
        integer = emb.table["id"].dtype.kind in "iu"
        try:
            return [int(q) if integer else q for q in args.query]
        except ValueError:
            raise InputError(f"--query must be integer source ids here, not "
                             f"{args.query}.") from None
    if args.image:
        from ..io import load_image
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


def cmd_similar(args):
    from pathlib import Path

    import astropy.units as u

    from ..catalog import write_table
    from ..embed import Embedding, similar

    check_outputs(args, kind="png", table="table")
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
        if not max_sep.value > 0:
            raise InputError(f"--max-sep must be a positive angle, not {args.max_sep!r}.")
    cutouts = args.cutouts
    if cutouts is None:
        cutouts = emb.meta.get("cutouts")
        if not cutouts or not Path(cutouts).is_file():
            raise InputError(f"The picture needs the cutouts the features were made from: "
                             f"{args.features} records {cutouts!r}, which is not a file here; "
                             "name them with --cutouts.")
    model = None
    if args.weights is not None:
        from ..backbones import load_backbone
        model = load_backbone(emb.meta.get("backbone"), weights=args.weights,
                              device=args.device, in_chans=int(emb.meta.get("in_chans", 3)))
    table = similar(emb, query, k=args.k, output=args.output, cutouts=cutouts, model=model,
                    max_separation=max_sep, device=args.device, overwrite=args.overwrite,
                    **given(batch_size=args.batch_size))
    log.info("%d queries, %d neighbours each, drawn in %s", len(table.meta["queries"]), args.k,
             args.output)
    if args.table is not None:
        write_table(table, args.table, overwrite=args.overwrite)
        log.info("neighbours written to %s", args.table)


def cmd_attention(args):
    from ..embed import attention_maps
    from ..utils import is_random_weights

    check_outputs(args, kind="png")
    stack = read_stack(args.cutouts)
    rows = parse_rows(args.rows, len(stack))
    attention_maps(stack[rows], model=args.model, weights=args.weights, crop=args.crop or [1.0],
                   output=args.output, device=args.device, overwrite=args.overwrite,
                   **given(batch_size=args.batch_size))
    log.info("attention maps of %d cutouts from %s drawn in %s", len(rows), args.model,
             args.output)
    if is_random_weights(args.weights):
        log.warning("%s has random weights: the maps show an untrained model, not where a "
                    "trained one looks (the figure's title says so)", args.model)
