# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The text, class tags and colours that regions carry, from table columns."""

import re
import warnings

import numpy as np
import astropy.units as u

from ..exceptions import InputError
from .region_inputs import _values

__all__ = []

# Okabe-Ito colours (colour-blind safe), brightest first: they show on DS9's
# default grey colour map. Classes take them in sorted order.
_PALETTE = ("#56B4E9", "#E69F00", "#009E73", "#F0E442", "#CC79A7", "#D55E00",
            "#0072B2", "#FFFFFF")
_DEFAULT_COLOR = "green"  # DS9's own default
_MISSING_COLOR = "#999999"  # rows whose colour column is NaN or masked

#: Regions get a text only up to this many, unless text is asked for
#: (7,000 labels hide a crowded field in DS9).
REGION_TEXT_LIMIT = 100


_UNSAFE = re.compile(r"[{}\[\]'\",#;]")
#: Control characters (line breaks, tabs, escapes, C1) and Unicode line separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _safe_text(value):
    r"""
    Text that DS9 braces and CRTF quotes both hold, on one line: control
    characters and line breaks, and the delimiters of both formats
    (``{ } [ ] ' " , # ;``), become spaces. Every text, class tag and
    colour a region file gets passes through here.

    Examples
    --------
    >>> from astrofmtools.catalog.region_style import _safe_text
    >>> _safe_text('a}\n# evil\ncircle(1,1,1')
    'a    evil circle(1 1 1'
    """
    return _UNSAFE.sub(" ", _CONTROL.sub(" ", str(value))).strip()


def _safe_color(value):
    """A colour name or ``#rrggbb``: its leading letters and digits (after one '#'), only."""
    found = re.match(r"\s*(#?[0-9A-Za-z]+)", str(value))
    return found.group(1) if found else _DEFAULT_COLOR


def _strings(table, name):
    col = table[name]
    if getattr(col, "ndim", 1) != 1:
        raise InputError(f"Column {name!r} must hold one value per row.")
    if isinstance(col, u.Quantity):
        return [_format_number(v) for v in col.value]
    values = np.ma.asarray(col)
    out = []
    for v, masked in zip(values.data, np.ma.getmaskarray(values)):
        out.append("" if masked else _safe_text(_format_number(v)))
    return out


def _format_number(v):
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def _scores(table, name):
    col = table[name]
    arr = _values(col)
    if arr.ndim == 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
            arr = np.nanmax(arr, axis=1)
    elif arr.ndim != 1:
        raise InputError(f"Column {name!r} must be 1-D (a score) or 2-D (probabilities).")
    return arr


def _texts(table, text_col, label_col, score_col, auto):
    if text_col is None:
        return None
    texts = _strings(table, text_col)
    if auto and text_col in (label_col, "label") and score_col is not None:
        scores = _scores(table, score_col)
        texts = [f"{t} {s:.2f}" if np.isfinite(s) else t for t, s in zip(texts, scores)]
    return texts


def _colors(labels, color, n):
    if isinstance(color, str):
        return [_safe_color(color)] * n
    if labels is None:
        return [_DEFAULT_COLOR] * n
    classes = sorted(set(labels))
    palette = {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(classes)}
    if isinstance(color, dict):
        palette.update({_safe_text(_format_number(k)): _safe_color(v)
                        for k, v in color.items()})
    elif color is not None:
        raise InputError(f"color must be a colour name or a dict class -> colour; "
                         f"got {type(color).__name__}.")
    return [palette[lab] for lab in labels]


def _is_numeric(col):
    if isinstance(col, u.Quantity):
        return True
    return np.ma.asarray(col).dtype.kind in "fiu"


def _column_colors(table, name, color, cmap="viridis"):
    """
    Colours from one column: classes (strings, booleans) from the palette,
    numbers (a score, a flux) through a colour map over their finite range.
    """
    if name not in table.colnames:
        raise InputError(f"color_by= names column {name!r}, which the table lacks; its "
                         f"columns are {table.colnames}.")
    n = len(table)
    if not _is_numeric(table[name]) or getattr(table[name], "ndim", 1) != 1:
        return _colors(_strings(table, name), color, n)
    import matplotlib
    from matplotlib.colors import to_hex

    values = _scores(table, name)
    finite = np.isfinite(values)
    out = [_MISSING_COLOR] * n
    if not finite.any():
        return out
    low, high = np.min(values[finite]), np.max(values[finite])
    scaled = (values - low) / (high - low) if high > low else np.full(n, 0.5)
    colormap = matplotlib.colormaps[cmap]
    for i in np.flatnonzero(finite):
        out[i] = to_hex(colormap(float(scaled[i])))
    return out
