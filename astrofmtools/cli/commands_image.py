# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrofm demo``, ``info``, ``sources`` and ``cutouts``: images to catalogues and stamps."""

import logging
import time
import warnings

from ..exceptions import InputError
from .inputs import check_outputs, given, load_image_arg
from .options import (add_common, add_image_options, number_or, positive_float, positive_int,
                      scheduler_of)

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
    p.add_argument("--background-map", default=None,
                   help="also write the background and RMS maps to this FITS file")
    add_common(p, "catalogue (.ecsv, .fits or .vot)", workers=True)

    p = add("cutouts", "cut stamps around the sources of a table out of a FITS image",
            cmd_cutouts)
    add_image_options(p)
    p.add_argument("table", help="source table with x/y (0-based pixels) or sky columns")
    p.add_argument("--size", default=64, type=number_or("bbox", positive_int),
                   help="cutout side in pixels, or 'bbox' for a close crop around each "
                        "source's bounding box (default: 64)")
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
        lines.append(f"noise:       {noise.std:.4g} (sigma-clipped std), "
                     f"median {noise.median:.4g}")
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
                      wcs=image.wcs, overwrite=args.overwrite)
        log.info("regions written to %s", args.regions)
    write_table(table, args.output, overwrite=args.overwrite)
    log.info("catalogue written to %s", args.output)
    if args.background_map is not None:
        background.write(args.background_map, overwrite=args.overwrite)
        log.info("background and RMS maps written to %s", args.background_map)


def cmd_cutouts(args):
    from ..catalog import read_table
    from ..cutouts import make_cutouts

    check_outputs(args, kind="fits")
    size = args.size
    output_size = args.output_size
    if size == "bbox" and output_size is None:
        output_size = 64
    image = load_image_arg(args)
    if args.band:
        from ..io import load_bands
        image = load_bands([image] + list(args.band), reference=0, method=args.band_method)
    table = read_table(args.table)
    scheduler, workers = scheduler_of(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stack = make_cutouts(image, table, size=size, output_size=output_size,
                             scheduler=scheduler, workers=workers, warn_outside=True)
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
