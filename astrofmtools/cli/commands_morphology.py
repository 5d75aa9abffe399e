# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrofm morphology``: statmorph's non-parametric morphology of every cutout."""

import logging
import time

from .inputs import check_outputs, given, read_stack
from .options import add_common, positive_float

__all__ = ["add_parsers"]

log = logging.getLogger("astrofmtools")

#: The example at the end of ``astrofm morphology --help``.
EXAMPLE = ("example:\n  astrofm morphology cutouts.fits -o morph.ecsv --png gini_m20.png "
           "--psf-fwhm 2.5")


def add_parsers(add):
    """Declare the subcommands of this module (``add`` as in `~astrofmtools.cli.build_parser`)."""
    from . import parser as _parser
    _parser.EPILOG.setdefault("morphology", EXAMPLE)  # this module owns its example
    p = add("morphology", "measure the non-parametric morphology (CAS, Gini-M20, MID, Sersic "
                          "fit) of every cutout with statmorph", cmd_morphology)
    p.add_argument("cutouts", help="cutout stack written by 'astrofm cutouts' (.fits)")
    p.add_argument("--png", default=None, metavar="PATH",
                   help="also draw the Gini-M20 diagram (Lotz et al. 2008 lines) to this PNG")
    p.add_argument("--band", default=None,
                   help="the band to measure in multi-band cutouts: a name or a 0-based index")
    p.add_argument("--psf-fwhm", type=positive_float, default=None, metavar="PIX",
                   help="FWHM in pixels of a Gaussian PSF for the Sersic fit (default: no PSF)")
    p.add_argument("--gain", type=positive_float, default=None,
                   help="electrons per data unit: the weight map includes the sources' "
                        "Poisson noise (default: the background RMS in every pixel)")
    p.add_argument("--snr", type=positive_float, default=None,
                   help="significance (smoothed cutout) a source's peak must reach "
                        "(default: 5)")
    p.add_argument("--island-snr", type=positive_float, default=None,
                   help="significance down to which a source's segment extends (default: 2)")
    add_common(p, "morphology table (.ecsv, .fits or .vot)")


def cmd_morphology(args):
    from ..catalog import write_table
    from ..morphology import measure_morphology, plot_morphology

    check_outputs(args, kind="table", png="png")
    stack = read_stack(args.cutouts)
    band = args.band
    if band is not None and band.lstrip("-").isdigit():
        band = int(band)
    t0 = time.perf_counter()
    table = measure_morphology(stack, **given(band=band, psf=args.psf_fwhm, gain=args.gain,
                                              snr=args.snr, island_snr=args.island_snr))
    write_table(table, args.output, overwrite=args.overwrite)
    log.info("morphology of %d cutouts of %s in %.1f s (%d failed, %d without a source); "
             "written to %s", len(table), args.cutouts, time.perf_counter() - t0,
             table.meta["n_failed"], table.meta["n_no_source"], args.output)
    if args.png is not None:
        from matplotlib.figure import Figure
        ax = Figure(figsize=(5.6, 4.8), layout="constrained").add_subplot()
        plot_morphology(table, ax=ax, path=args.png, overwrite=args.overwrite)
        log.info("Gini-M20 diagram written to %s", args.png)
