# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrofm crossmatch``: tables matched on the sky."""

import logging
import time

from .inputs import check_outputs
from .options import add_common, add_position_options

__all__ = ["add_parsers"]

log = logging.getLogger("astrofmtools")


def add_parsers(add):
    """Declare the subcommands of this module (``add`` as in `~astrofmtools.cli.build_parser`)."""
    p = add("crossmatch", "match the rows of a table with the sources of a reference catalogue "
                          "on the sky", cmd_crossmatch)
    p.add_argument("table", help="table to match (.ecsv, .fits, .vot, .csv or a HATS folder) "
                                 "with sky positions")
    p.add_argument("reference", help="reference catalogue (.ecsv, .fits, .vot, .csv or a HATS "
                                     "folder: then matched partition by partition with lsdb)")
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
    add_position_options(p, "TABLE", xy=False)  # --sky, as every command spells it
    p.add_argument("--ref-sky", default=None, help="positions in REFERENCE, as --sky")
    p.add_argument("--frame", default=None,
                   help="frame of the --sky columns: icrs, fk5, galactic, ecliptic, ... "
                        "(default: from their names: l/b and GLON/GLAT are galactic, ELON/ELAT "
                        "ecliptic, RA/Dec names and others icrs, or the RADESYS/EQUINOX of "
                        "the table's meta)")
    p.add_argument("--ref-frame", default=None, help="frame of the --ref-sky columns, as --frame")
    p.add_argument("--ref-columns", default=None,
                   help="comma-separated reference columns to copy (default: all)")
    add_common(p, "matched table (.ecsv, .fits, .vot, .csv, or .hats: a HATS folder)")


def cmd_crossmatch(args):
    from ..catalog import crossmatch, crossmatch_hats, write_table

    check_outputs(args, kind="folder" if _is_hats(args.output) else "file")
    columns = None
    if args.ref_columns is not None:
        columns = [name.strip() for name in args.ref_columns.split(",") if name.strip()]
    t0 = time.perf_counter()
    hats_in = any(_is_hats(path) for path in (args.table, args.reference))
    hats_out = hats_in and _is_hats(args.output)
    settings = dict(max_sep=args.max_sep, mode=args.mode, keep_unmatched=args.keep_unmatched,
                    suffix=args.suffix, sky=args.sky, ref_sky=args.ref_sky, ref_columns=columns,
                    frame=args.frame, ref_frame=args.ref_frame)
    if hats_in:  # partition by partition (lsdb), written as it goes for a .hats output
        matched = crossmatch_hats(args.table, args.reference, **settings,
                                  output=args.output if hats_out else None,
                                  overwrite=args.overwrite)
    else:
        matched = crossmatch(args.table, args.reference, **settings)
    meta = matched if hats_out else matched.meta
    info = [v for k, v in meta.items() if str(k).startswith("crossmatch")][-1]
    log.info("positions: %s of %s, %s of %s", _where(info["sky"], info["sky_frame"]),
             args.table, _where(info["ref_sky"], info["ref_frame"]), args.reference)
    if not hats_out:
        write_table(matched, args.output, overwrite=args.overwrite)
    log.info("%d of %d rows of %s matched to %s within %g arcsec (%s mode, %d pairs) in %.1f s;"
             " written to %s", info["n_matched_rows"], info["n_table"], args.table,
             args.reference, info["max_sep_arcsec"], info["mode"], info["n_pairs"],
             time.perf_counter() - t0, args.output)


def _is_hats(path):
    """Whether a path is (or, by its name, is to be) a HATS catalogue folder."""
    from ..catalog import is_hats
    return is_hats(path) or str(path).rstrip("/\\").lower().endswith(".hats")


def _where(columns, frame):
    """``columns 'l', 'b' (galactic)``: the columns and frame the positions came from."""
    if isinstance(columns, str):
        return f"column {columns!r} ({frame})"
    return f"columns {', '.join(map(repr, columns))} ({frame})"
