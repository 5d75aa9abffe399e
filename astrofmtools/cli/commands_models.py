# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrofm models``: the registered backbones and whether their weights are on this machine."""

import json
import logging

from .inputs import check_outputs
from .options import add_common

__all__ = ["add_parsers", "models_table"]

log = logging.getLogger("astrofmtools")

#: The columns of `models_table`, their descriptions.
_COLUMNS = {
    "name": "registry name (--model)",
    "family": "how the weights were pretrained",
    "kind": "architecture family (vit, cnn)",
    "input_size": "default input side (pixels)",
    "licence": "licence of the weights",
    "weights": "embedded, local, cache or missing",
    "path": "the weights file found, or where to save a missing one",
    "download": "where to fetch a missing file (empty when found)",
    "message": "what to do",
}


def add_parsers(add):
    """Declare the subcommands of this module (``add`` as in `~astrofmtools.cli.build_parser`)."""
    p = add("models", "list the backbones, which weights are on this machine and where each "
                      "missing one goes", cmd_models)
    p.add_argument("--json", action="store_true",
                   help="print the list as JSON (one object per backbone) instead of a table")
    p.add_argument("--family", default=None,
                   help="only this family (self-supervised, weakly supervised, distilled, "
                        "supervised)")
    add_common(p, {"required": False, "default": None,
                   "help": "also write the list as a table (.ecsv, .fits or .vot)"})


def models_table(family=None):
    """
    The registered backbones and the state of their weights on this machine.

    Nothing is downloaded and the network is not touched: the weights are
    looked for where `~astrofmtools.backbones.load_backbone` looks
    (`~astrofmtools.backbones.weights_status`).

    Parameters
    ----------
    family : str, optional
        Keep only this family (see `~astrofmtools.backbones.FAMILIES`).

    Returns
    -------
    table : `~astropy.table.Table`
        One row per backbone: ``name``, ``family``, ``kind``,
        ``input_size`` (pixels), ``licence``, ``weights`` (``'embedded'``,
        ``'local'``, ``'cache'`` or ``'missing'``), ``path`` (the file
        found, or where to save a missing one), ``download`` (the address
        of a missing file) and ``message`` (what to do).

    Examples
    --------
    >>> from astrofmtools.cli.commands_models import models_table
    >>> table = models_table()
    >>> row = table[list(table["name"]).index("efficientnet_lite0")]
    >>> str(row["weights"]), str(row["licence"])
    ('embedded', 'Apache-2.0')
    """
    from astropy.table import Table
    from ..backbones import list_backbones, weights_status
    backbones = list_backbones(family=family)
    rows = []
    for spec in backbones:
        status = weights_status(str(spec["name"]))
        rows.append((str(spec["name"]), str(spec["family"]), str(spec["kind"]),
                     int(spec["input_size"]), str(spec["licence"]), status["status"],
                     status["path"] or "", status["download"] or "", status["message"]))
    table = Table(rows=rows or None, names=list(_COLUMNS),
                  dtype=[str, str, str, int, str, str, str, str, str])
    for name, text in _COLUMNS.items():
        table[name].description = text
    return table


def _text(table):
    """The table as aligned text: name, family, input, licence, weights."""
    header = ("name", "family", "input", "licence", "weights")
    rows = [(r["name"], r["family"], str(r["input_size"]), r["licence"], r["message"])
            for r in table]
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(4)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header[:4], widths)) + "  " + header[4]]
    for r in rows:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r[:4], widths)) + "  " + r[4])
    return "\n".join(lines)


def cmd_models(args):
    from ..catalog import write_table
    if args.output is not None:
        check_outputs(args, kind="table")
    table = models_table(family=args.family)
    if args.json:
        print(json.dumps([{name: (int(row[name]) if name == "input_size" else str(row[name]))
                           for name in table.colnames} for row in table], indent=1))
    elif not args.quiet:
        print(_text(table))
    if args.output is not None:
        write_table(table, args.output, overwrite=args.overwrite)
        log.info("%d backbones written to %s", len(table), args.output)
