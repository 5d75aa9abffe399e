# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrofm demo``, ``info``, ``sources`` and ``cutouts``: images to catalogues and stamps."""

import logging
import time
import warnings

from ..exceptions import InputError
from .inputs import check_outputs, given, load_image_arg
from .options import (add_common, add_image_options, add_position_options, add_region_options,
                      number_or, positions_of,
                      positive_float, positive_int, region_style_of, scheduler_of)

__all__ = ["add_parsers", "describe_image"]

log = logging.getLogger("astrofmtools")


def add_parsers(add):
    """Declare the subcommands of this module (``add`` as in `~astrofmtools.cli.build_parser`)."""
    p = add("demo", "run the whole chain on the example image that ships with the package",
            cmd_demo)
    p.add_argument("--image", default=None,
                   help="run on this FITS image instead of the shipped example")
    p.add_argument("--no-ml", action="store_true",
                   help="skip the foundation-model stages (features, classes, feature map)")
    add_common(p, "output folder (refused if it exists, unless --overwrite)", model=True,
               weights=True, device=True, batch_size=True, seed=True)

    p = add("info", "describe what the loader sees in a FITS file", cmd_info)
    add_image_options(p)
    add_common(p)

    p = add("sources", "find sources in a FITS image and write a catalogue (and regions)",
            cmd_sources)
    add_image_options(p)
    p.add_argument("--snr", type=positive_float, default=5.0,
                   help="detection threshold in units of the matched-filtered noise "
                        "(default: 5)")
    p.add_argument("--psf-fwhm", type=positive_float, default=None,
                   help="beam/PSF FWHM in pixels (default: from BMAJ/BMIN or the survey)")
    p.add_argument("--no-deblend", action="store_true", help="do not split blended islands")
    p.add_argument("--regions", default=None, help="also write a region file (.reg or .crtf)")
    p.add_argument("--region-shape", default="ellipse", choices=["circle", "box", "ellipse"],
                   help="shape of the regions (default: ellipse)")
    add_region_options(p)
    p.add_argument("--background-map", default=None,
                   help="also write the background and RMS maps to this FITS file")
    add_common(p, "catalogue (.ecsv, .fits or .vot)", workers=True)

    p = add("cutouts", "cut stamps around the sources of a table out of a FITS image, or "
                       "read postage stamps (FITS, PNG, JPEG, TIFF) as cutouts", cmd_cutouts)
    add_image_options(p, "FITS image to cut (or a folder of postage stamps: as --stamps)",
                      optional=True)
    p.add_argument("table", nargs="?", default=None,
                   help="source table with x/y (0-based pixels) or sky columns")
    add_position_options(p, "TABLE or --stamp-table")
    p.add_argument("--stamps", nargs="+", default=None, metavar="PATH",
                   help="instead of IMAGE and TABLE: postage stamps, one centred source each "
                        "(SkyView, Legacy Survey...): FITS files, or PNG/JPEG/TIFF pictures "
                        "(grey: one channel, colour: three); files, folders or glob patterns")
    p.add_argument("--pixel-scale", type=positive_float, default=None, metavar="ARCSEC",
                   help="with --stamps pictures: the pixel side in arcsec; with the sky "
                        "positions of --stamp-table it gives each picture a WCS")
    p.add_argument("--stamp-table", default=None, metavar="TABLE",
                   help="with --stamps: a table of the stamps, one row per file (matched on a "
                        "'file' column of file names, else in the files' order); its columns "
                        "(id, labels...) join the cutouts' table, and its sky positions "
                        "(--sky) are the centres of pictures")
    p.add_argument("--size", default=None, type=number_or("bbox", positive_int),
                   help="cutout side in pixels, or 'bbox' for a close crop around each "
                        "source's bounding box (default: 64; with --stamps, the stamps' own "
                        "size, which must then be the same for all)")
    p.add_argument("--output-size", type=positive_int, default=None,
                   help="resize every cutout to this side (default: no resizing, or 64 "
                        "with --size bbox)")
    p.add_argument("--band", action="append", default=[], metavar="FITS",
                   help="another image of the same sky, reprojected onto IMAGE's grid and "
                        "cut as an extra channel (repeatable)")
    p.add_argument("--band-method", default="interp", choices=["interp", "exact", "adaptive"],
                   help="reprojection of --band images (default: interp; exact conserves "
                        "flux)")
    add_common(p, "multi-extension FITS file of the cutouts", workers=True)


def cmd_demo(args):
    from ..datasets import example_image_path
    from ..pipeline import run_pipeline
    check_outputs(args, kind="folder")
    result = run_pipeline(args.image or example_image_path(), args.output, model=args.model,
                          weights=args.weights, ml=False if args.no_ml else None, seed=args.seed,
                          device=args.device, overwrite=args.overwrite,
                          **given(batch_size=args.batch_size))
    if not args.quiet:
        print(result.summary)


def cmd_info(args):
    from ..background import global_noise
    image = load_image_arg(args)
    print(describe_image(image, global_noise(image), hdus=_hdu_list(args.image)))


def _hdu_list(path):
    """Every HDU of a FITS file as (index, name, type, dimensions, format)."""
    from astropy.io import fits
    with fits.open(path, memmap=True) as hdul:
        return [(row[0], row[1], row[3], row[5], row[6]) for row in hdul.info(output=False)]


def describe_image(image, noise=None, hdus=None):
    """
    Lines of text describing a loaded image (used by ``astrofm info``).

    Parameters
    ----------
    image : `~astrofmtools.io.SkyImage`
        An image from `~astrofmtools.io.load_image`.
    noise : optional
        Its noise, from `~astrofmtools.background.global_noise`.
    hdus : list of tuple, optional
        The file's HDUs as ``(index, name, type, dimensions, format)``; the
        one the loader read is marked with ``*``.

    Returns
    -------
    text : str

    Examples
    --------
    >>> from astrofmtools.cli import describe_image
    >>> from astrofmtools.datasets import example_image_path
    >>> from astrofmtools.io import load_image
    >>> print(describe_image(load_image(example_image_path())))  # doctest: +ELLIPSIS
    source:      ...
    shape:       300 x 300 pixels (x by y)
    ...
    """
    import astropy.units as u
    lines = [f"source:      {image.source}"]
    if hdus:
        used = image.source.rsplit("[", 1)[-1].rstrip("]") if image.source.endswith("]") else ""
        lines.append("hdus:")
        for index, name, kind, dims, fmt in hdus:
            mark = "*" if used in (str(index), str(name)) else " "
            if isinstance(dims, str):  # tables: "3R x 1C"
                shape = dims.replace("R", " rows").replace("C", " columns")
            else:
                shape = " x ".join(str(n) for n in dims) if dims else "no data"
            lines.append(f"  {mark}{index:>3}  {name:<12} {kind:<13} {shape:<17} {fmt}".rstrip())
    lines += [f"shape:       {image.shape[1]} x {image.shape[0]} pixels (x by y)",
              f"dtype:       {image.data.dtype}",
              f"unit:        {image.unit if image.unit is not None else '(none: no BUNIT)'}"]
    if image.header is not None and image.header.get("NAXIS", 2) > 2:
        lines.append(f"axes:        NAXIS={image.header['NAXIS']} in the file; one 2-D plane "
                     "read (length-1 axes dropped, --plane picks the others)")
    if image.wcs is not None:
        centre = image.wcs.pixel_to_world((image.shape[1] - 1) / 2, (image.shape[0] - 1) / 2)
        style = "hmsdms" if centre.frame.name in ("icrs", "fk5", "fk4") else "decimal"
        text = centre.to_string(style, precision=5 if style == "decimal" else 2)
        lines += [f"wcs:         {' '.join(image.wcs.wcs.ctype)}",
                  f"centre:      {text} ({centre.frame.name})",
                  f"pixel scale: {image.pixel_scale.to_value(u.arcsec):.4g} arcsec",
                  f"field:       {image.shape[1] * image.pixel_scale.to_value(u.arcmin):.4g}' x "
                  f"{image.shape[0] * image.pixel_scale.to_value(u.arcmin):.4g}'"]
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
        unit = f" {image.unit}" if image.unit is not None else ""
        lines.append(f"noise:       {u.Quantity(noise.std).value:.4g}{unit} (sigma-clipped "
                     f"std), median {u.Quantity(noise.median).value:.4g}{unit}")
    return "\n".join(lines)


def cmd_sources(args):
    from ..background import estimate_background
    from ..catalog import write_regions, write_table
    from ..sources import find_sources

    formats = check_outputs(args, kind="table", regions="regions", background_map="fits")
    scheduler, workers = scheduler_of(args)
    image = load_image_arg(args)
    if formats.get("regions") == "crtf" and image.wcs is None:
        raise InputError(f"--regions {args.regions}: CRTF regions are in sky coordinates and "
                         f"{image.source} has no WCS; write .reg (DS9, pixel coordinates).")
    t0 = time.perf_counter()
    # without --background-map, find_sources estimates the maps itself (tile by tile on a
    # mosaic)
    background = estimate_background(image, scheduler=scheduler, workers=workers) \
        if args.background_map else None
    table = find_sources(image, snr=args.snr, psf_fwhm=args.psf_fwhm,
                         deblend=not args.no_deblend, background=background,
                         scheduler=scheduler, workers=workers)
    log.info("%d sources found in %s in %.1f s", len(table), image.source,
             time.perf_counter() - t0)
    if args.regions is not None:  # first: the output that depends most on the table
        write_regions(table, args.regions, format=formats["regions"], shape=args.region_shape,
                      wcs=image.wcs, overwrite=args.overwrite, **region_style_of(args))
        log.info("regions written to %s", args.regions)
    write_table(table, args.output, overwrite=args.overwrite)
    log.info("catalogue written to %s", args.output)
    if args.background_map is not None:
        background.write(args.background_map, overwrite=args.overwrite)
        log.info("background and RMS maps written to %s", args.background_map)


def cmd_cutouts(args):
    from pathlib import Path
    from ..catalog import read_table
    from ..cutouts import make_cutouts

    stamps = args.stamps
    if stamps is None and args.table is None and args.image is not None \
            and Path(args.image).is_dir():
        stamps = [args.image]  # astrofm cutouts FOLDER: a folder of postage stamps
    elif stamps is not None and args.image is not None:
        raise InputError("--stamps replaces IMAGE and TABLE: give either a FITS image and a "
                         "table, or --stamps (with --stamp-table for a table of the stamps).")
    if stamps is not None:
        return _cutouts_of_stamps(args, stamps)
    if args.image is None or args.table is None:
        raise InputError("astrofm cutouts needs a FITS image and a table (astrofm cutouts "
                         "IMAGE TABLE), or postage stamps (--stamps FILES_OR_FOLDER).")
    for option in ("pixel_scale", "stamp_table"):
        if getattr(args, option) is not None:
            raise InputError(f"--{option.replace('_', '-')} goes with --stamps, not with "
                             "IMAGE and TABLE.")
    check_outputs(args, kind="fits")
    size = 64 if args.size is None else args.size
    output_size = args.output_size
    if size == "bbox" and output_size is None:
        output_size = 64
    image = load_image_arg(args)
    if args.band:
        from ..io import load_bands
        image = load_bands([image] + list(args.band), reference=0, method=args.band_method)
    table = read_table(args.table)
    positions = positions_of(args, table, args.table, required=size != "bbox")
    scheduler, workers = scheduler_of(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stack = make_cutouts(image, table, size=size, output_size=output_size,
                             scheduler=scheduler, workers=workers, warn_outside=True,
                             **positions)
    for record in caught:
        n_outside = getattr(record.message, "n_outside", None)
        if n_outside is None:  # not ours to judge: shown as it would have been
            warnings.warn_explicit(record.message, record.category, record.filename,
                                   record.lineno)
        elif n_outside == len(stack):
            raise InputError(f"No cutout overlaps the image: every position of {args.table} "
                             f"({n_outside} rows) lies outside {image.source}. Are the "
                             "table and the image of the same field?")
        else:
            log.warning("%s", record.message)
    stack.write(args.output, overwrite=args.overwrite)
    log.info("%d cutouts of %s%s written to %s", len(stack), "x".join(
        str(n) for n in stack.data.shape[-2:]),
        f" in {image.n_bands} bands" if image.n_bands > 1 else "", args.output)


def _stamp_kind(paths):
    """``'fits'`` or ``'pictures'``: what --stamps names (by file name; a folder by its files)."""
    from pathlib import Path
    from ..cutouts import IMAGE_SUFFIXES
    from ..io.files import FITS_SUFFIXES
    kinds = set()
    for path in paths:
        path = Path(path)
        names = [path.name.lower()]
        if path.is_dir():
            names = [p.name.lower() for p in path.iterdir() if p.is_file()]
            # a folder's FITS files if it has any, else its pictures (a catalogue beside them
            # is not a stamp)
            names = [n for n in names if n.endswith(FITS_SUFFIXES)] or \
                [n for n in names if n.endswith(IMAGE_SUFFIXES)]
        pictures = [n.endswith(IMAGE_SUFFIXES) for n in names]
        if names and all(pictures):
            kinds.add("pictures")
        elif not path.is_dir() or not any(pictures):
            kinds.add("fits")  # the reader says what is wrong with anything else
    if len(kinds) > 1:
        raise InputError("--stamps mixes FITS files and pictures (PNG, JPEG, TIFF); make one "
                         "stack of each.")
    return kinds.pop() if kinds else "fits"


def _cutouts_of_stamps(args, stamps):
    """``astrofm cutouts --stamps``: FITS stamps or pictures, with their table's columns."""
    from ..catalog import read_table
    from ..cutouts import cutouts_from_files, cutouts_from_images, join_by_file
    from ..cutouts.image_files import _image_files
    from ..schema import parse_positions
    from .inputs import parse_hdu, parse_plane

    if args.table is not None:
        raise InputError(f"--stamps takes no TABLE ({args.table}); give a table of the stamps "
                         "with --stamp-table.")
    for option, value in (("--size bbox", args.size == "bbox"), ("--output-size",
                          args.output_size is not None), ("--band", bool(args.band)),
                          ("--xy", args.xy is not None)):
        if value:
            raise InputError(f"{option} goes with IMAGE and TABLE, not with --stamps.")
    if args.sky is not None and args.stamp_table is None:
        raise InputError("--sky names the sky columns of --stamp-table; give --stamp-table.")
    check_outputs(args, kind="fits")
    kind = _stamp_kind(stamps)
    table = None if args.stamp_table is None else read_table(args.stamp_table)
    if kind == "fits":
        if args.pixel_scale is not None:
            raise InputError("--pixel-scale is for pictures (PNG, JPEG, TIFF); FITS stamps "
                             "carry their own WCS.")
        stack = cutouts_from_files(stamps, size=args.size, hdu=parse_hdu(args.hdu),
                                   plane=parse_plane(args.plane))
        rows = None if table is None else join_by_file(stack.table["file"], table,
                                                       args.stamp_table)
    else:
        files = _image_files(stamps)
        rows = None if table is None else join_by_file(files, table, args.stamp_table)
        sky = None
        if rows is not None:
            pos = parse_positions(rows, args.sky, kind="sky", name=args.stamp_table,
                                  argument="--sky", required=args.sky is not None)
            if pos is not None:
                if not pos.valid.all():
                    bad = ", ".join(map(str, rows["file"][~pos.valid][:5])) \
                        if "file" in rows.colnames else ""
                    raise InputError(f"{args.stamp_table}: {int((~pos.valid).sum())} row(s) "
                                     f"have no sky position in {pos.describe()} {bad}.")
                sky = pos.sky
        if args.pixel_scale is None and sky is not None:
            log.warning("no --pixel-scale: the pictures get their sky positions but no WCS")
        stack = cutouts_from_images(files, pixel_scale=args.pixel_scale, size=args.size,
                                    sky=sky)
    if rows is not None:
        taken = [name for name in rows.colnames if name in stack.table.colnames]
        for name in rows.colnames:
            if name not in taken:
                stack.table[name] = rows[name]
        if [name for name in taken if name != "file"]:
            log.info("columns of %s already in the cutouts' table, not copied: %s",
                     args.stamp_table, ", ".join(n for n in taken if n != "file"))
    stack.write(args.output, overwrite=args.overwrite)
    log.info("%d cutouts of %s%s from %d %s written to %s", len(stack),
             "x".join(str(n) for n in stack.data.shape[-2:]),
             f" in {stack.data.shape[1]} bands" if stack.data.ndim == 4 else "", len(stack),
             "FITS stamps" if kind == "fits" else "pictures", args.output)
