# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""`CutoutStack`: cutout pixels, their source table and a WCS per cutout."""

import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import astropy.units as u
import astropy.wcs as astropy_wcs
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.io.misc import yaml
from astropy.table import QTable, Table, vstack
from astropy.wcs import WCS, FITSFixedWarning, Sip

from ..exceptions import InputError, MissingFileError
from ..utils import atomic_output

__all__ = ["CutoutStack", "CutoutParent", "CUTOUT_COLUMNS"]

#: The columns a cutout table carries besides the input's own, with their
#: dtype, default (for a stack built by hand) and description.
CUTOUT_COLUMNS = {
    "cutout_x0": (np.int64, 0, "0-based pixel x, in the parent image, of the cutout's first "
                  "column (of the crop, before any resizing)"),
    "cutout_y0": (np.int64, 0, "0-based pixel y, in the parent image, of the cutout's first "
                  "row (of the crop, before any resizing)"),
    "cutout_scale": (np.float64, 1.0, "parent-image pixels per cutout pixel (1: not resized)"),
    "cutout_x": (np.float64, np.nan, "source x in the cutout (0-based cutout pixel)"),
    "cutout_y": (np.float64, np.nan, "source y in the cutout (0-based cutout pixel)"),
    "edge": (bool, False, "cutout partly outside the image, or holding pixels without data "
             "(NaN)"),
    "cutout_parent": (np.int64, -1, "row of CutoutStack.parents (the image the cutout comes "
                      "from); -1: unknown"),
}

# WCS headers written with 17 significant digits, SIP included: reading them
# back gives bit-identical pixel <-> sky transformations.
_WCS_RELAX = astropy_wcs.WCSHDO_all | astropy_wcs.WCSHDO_P17 | astropy_wcs.wcs.WCSHDO_SIP

_FILE_TYPE = "CUTOUTSTACK"


class CutoutParent(NamedTuple):
    """
    An image that cutouts of a `CutoutStack` were cut from.

    Attributes
    ----------
    source : str
        Where the image came from (file and HDU), for messages.
    header : `~astropy.io.fits.Header`
        Its header: celestial WCS (written at full precision), ``BUNIT``,
        beam and the other cards of the original header.
    wcs : `~astropy.wcs.WCS` or None
        Its 2-D celestial WCS.

    Examples
    --------
    >>> from astrofmtools.cutouts import CutoutParent
    >>> from astrofmtools.datasets import example_image_path
    >>> from astrofmtools.io import load_image
    >>> parent = CutoutParent.from_image(load_image(example_image_path()))
    >>> parent.source.endswith("first_example.fits[0]"), parent.header["SURVEY"]
    (True, 'FIRST')
    >>> text = parent.header.tostring()
    >>> CutoutParent.from_header_string(parent.source, text).wcs.wcs.ctype[0]
    'RA---TAN'
    """

    source: str
    header: fits.Header
    wcs: object

    @classmethod
    def from_image(cls, image):
        """The parent record of a `~astrofmtools.io.SkyImage`."""
        from ..io import image_header
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VerifyWarning)
            header = image_header(image)
            if image.wcs is not None:
                # the cards as wcslib writes them, at full precision (Header.update
                # would reformat the values to 20 characters)
                cards = image.wcs.to_header(relax=_WCS_RELAX)
                for key in set(cards.keys()):
                    header.remove(key, ignore_missing=True, remove_all=True)
                header.extend(cards.cards)
        return cls(str(image.source), header, image.wcs)

    @classmethod
    def from_header_string(cls, source, text):
        """Rebuild a parent from its source name and header text (as stored in files)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VerifyWarning)
            header = fits.Header.fromstring(text) if text.strip() else fits.Header()
        wcs = None
        if any(str(header.get(f"CTYPE{k}", "")).strip() for k in (1, 2)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FITSFixedWarning)
                wcs = WCS(header, relax=True)
            if not wcs.has_celestial:
                wcs = None
        return cls(source, header, wcs)


class CutoutStack:
    """
    Cutouts of many sources: pixels, source table and a WCS per cutout.

    Make one with `~astrofmtools.cutouts.make_cutouts` (from an image and a
    table) or `~astrofmtools.cutouts.cutouts_from_files` (from survey cutout
    files); save it to one FITS file with `write` and load it with `read`.

    Parameters
    ----------
    data : array-like
        The cutouts, shape ``(N, H, W)`` or ``(N, C, H, W)`` (channels),
        stored as float32. NaN marks pixels without data.
    table : `~astropy.table.Table`, optional
        One row per cutout. The cutout columns missing from it
        (`CUTOUT_COLUMNS`: ``cutout_x0``, ``cutout_y0``, ``cutout_scale``,
        ``cutout_x``, ``cutout_y``, ``edge``, ``cutout_parent``) are added
        with neutral defaults.
    parents : list of `CutoutParent`, optional
        The images the cutouts come from; the table's ``cutout_parent``
        column indexes this list.
    unit : `~astropy.units.Unit` or str, optional
        The pixel unit (of all bands; None when the bands differ).
    bands : list of str, optional
        For ``(N, C, H, W)`` cutouts of a multi-band image: the name of each
        of the C bands (default None: unnamed channels, such as a
        multi-stretch stack).
    band_units : list, optional
        With ``bands``: each band's unit (or None).

    Attributes
    ----------
    data : `~numpy.ndarray`
        ``(N, H, W)`` (or ``(N, C, H, W)``) float32 cutouts.
    table : `~astropy.table.QTable`
        The input rows and columns, unchanged, plus the cutout columns.
    parents : list of `CutoutParent`
        The images cut from.
    unit : `~astropy.units.Unit` or None
        The pixel unit.
    bands, band_units : list or None
        The band names and units of multi-band cutouts (channel axis 1).

    Notes
    -----
    A cutout's pixel ``(i, j)`` (row, column; 0-based) is centred on the
    parent-image pixel position ``x = cutout_x0 - 0.5 + (j + 0.5) *
    cutout_scale``, ``y = cutout_y0 - 0.5 + (i + 0.5) * cutout_scale``
    (`cutout_to_image`); with ``cutout_scale = 1`` that is simply
    ``(cutout_x0 + j, cutout_y0 + i)``. The per-cutout WCS (`wcs`,
    `wcs_of`) is built from the parent's WCS and these numbers when it is
    asked for, so a stack of many cutouts stays cheap.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.cutouts import CutoutStack
    >>> stack = CutoutStack(np.zeros((3, 8, 8)))
    >>> stack
    <CutoutStack: 3 cutouts of 8x8>
    >>> len(stack[1:]), stack.table.colnames[:3]
    (2, ['cutout_x0', 'cutout_y0', 'cutout_scale'])

    Multi-band cutouts name their bands:

    >>> stack = CutoutStack(np.zeros((3, 2, 8, 8)), bands=["radio", "w1"],
    ...                     band_units=["Jy/beam", None])
    >>> stack
    <CutoutStack: 3 cutouts of 8x8 x 2 bands (radio, w1)>
    >>> stack.band("w1").data.shape
    (3, 8, 8)
    """

    def __init__(self, data, table=None, parents=None, unit=None, bands=None,
                 band_units=None):
        data = np.asarray(data, dtype=np.float32)
        if data.ndim < 3:
            raise InputError(f"Cutout data must be (N, H, W) or (N, C, H, W); got shape "
                             f"{data.shape}.")
        n = data.shape[0]
        if table is None:
            table = QTable()
        elif not isinstance(table, QTable):
            table = QTable(table)
        if not table.colnames:
            table = QTable(meta=table.meta)  # its length: that of the columns added below
        elif len(table) != n:
            raise InputError(f"The cutout table has {len(table)} rows for {n} cutouts.")
        for name, (dtype, default, description) in CUTOUT_COLUMNS.items():
            if name not in table.colnames:
                table[name] = np.full(n, default, dtype=dtype)
                table[name].info.description = description
        self.data = data
        self.table = table
        self.parents = list(parents) if parents is not None else []
        self.unit = u.Unit(unit) if unit is not None else None
        self.bands, self.band_units = _check_bands(data, bands, band_units)

    # ------------------------------------------------------------------ basics
    def __len__(self):
        return self.data.shape[0]

    @property
    def shape(self):
        """The shape of `data`: ``(N, H, W)`` or ``(N, C, H, W)``."""
        return self.data.shape

    @property
    def cutout_shape(self):
        """``(H, W)`` of one cutout."""
        return self.data.shape[-2:]

    def __repr__(self):
        h, w = self.cutout_shape
        channels = f" x {self.data.shape[1]} channels" if self.data.ndim == 4 else ""
        if self.bands is not None:
            channels = f" x {len(self.bands)} bands ({', '.join(self.bands)})"
        unit = f" [{self.unit}]" if self.unit is not None else ""
        if len(self.parents) == 1:
            origin = f" from {self.parents[0].source}"
        elif self.parents:
            origin = f" from {len(self.parents)} images"
        else:
            origin = ""
        n = len(self)
        return (f"<CutoutStack: {n} cutout{'' if n == 1 else 's'} of {w}x{h}{channels}{unit}"
                f"{origin}>")

    def __getitem__(self, key):
        if isinstance(key, tuple):
            raise TypeError("Index a CutoutStack by cutout only (an int, a slice, a boolean "
                            "mask or integer indices); use stack.data for pixels.")
        if isinstance(key, (int, np.integer)):
            key = [int(key)]
        elif not isinstance(key, slice):
            key = np.asarray(key)
            if key.dtype == bool and key.shape != (len(self),):
                raise IndexError(f"A boolean mask for a stack of {len(self)} cutouts needs "
                                 f"{len(self)} values, not {key.shape}.")
        table = self.table[key]
        table.meta = self.table.meta
        return CutoutStack(self.data[key], table, self.parents, self.unit, self.bands,
                           self.band_units)

    def band(self, key):
        """
        The cutouts of one band, as a stack of 2-D cutouts (a view, no copy).

        Parameters
        ----------
        key : int or str
            The band's index or name.

        Returns
        -------
        stack : `CutoutStack`
            ``(N, H, W)`` cutouts with the band's unit, the same table and
            parents (so the same WCS).

        Raises
        ------
        astrofmtools.InputError
            For a stack without named bands, or a band it does not have (the
            message lists the bands).

        Examples
        --------
        >>> import numpy as np
        >>> from astrofmtools.cutouts import CutoutStack
        >>> stack = CutoutStack(np.arange(2 * 3 * 4 * 4.0).reshape(2, 3, 4, 4),
        ...                     bands=["z", "r", "g"])
        >>> float(stack.band("r").data[0, 0, 0]), float(stack.band(2).data[0, 0, 0])
        (16.0, 32.0)
        """
        if self.bands is None:
            raise InputError(f"This stack of {'x'.join(map(str, self.data.shape[1:]))} "
                             "cutouts has no named bands.")
        index = _band_index(self.bands, key)
        return CutoutStack(self.data[:, index], self.table, self.parents,
                           self.band_units[index])

    @property
    def image_wcs(self):
        """The WCS of the image cut from, when all cutouts come from one; else None."""
        return self.parents[0].wcs if len(self.parents) == 1 else None

    # --------------------------------------------------------------- geometry
    def _row(self, index):
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"Cutout {index} does not exist; the stack has {len(self)}.")
        t = self.table
        return (int(t["cutout_parent"][index]), int(t["cutout_x0"][index]),
                int(t["cutout_y0"][index]), float(t["cutout_scale"][index]))

    def wcs_of(self, index):
        """
        The WCS of one cutout, built from its parent image's WCS.

        Parameters
        ----------
        index : int
            The cutout (row of `table`).

        Returns
        -------
        wcs : `~astropy.wcs.WCS` or None
            A new WCS object (safe to modify), or None when the parent
            image has no WCS.

        Examples
        --------
        >>> from astropy.table import QTable
        >>> from astrofmtools.cutouts import make_cutouts
        >>> from astrofmtools.datasets import example_image_path
        >>> stack = make_cutouts(example_image_path(), QTable({"x": [150.0], "y": [140.0]}),
        ...                      size=32)
        >>> sky = stack.wcs_of(0).pixel_to_world(16, 16)   # the cutout's centre pixel
        >>> print(sky.separation(stack.image_wcs.pixel_to_world(150, 140)).arcsec < 1e-6)
        True
        """
        parent, x0, y0, scale = self._row(index)
        if parent < 0 or parent >= len(self.parents) or self.parents[parent].wcs is None:
            return None
        return _cutout_wcs(self.parents[parent].wcs, x0, y0, scale, self.cutout_shape)

    @property
    def wcs(self):
        """
        The cutouts' WCS, as a list built on demand (each item from `wcs_of`).

        Examples
        --------
        >>> from astropy.table import QTable
        >>> from astrofmtools.cutouts import make_cutouts
        >>> from astrofmtools.datasets import example_image_path
        >>> stack = make_cutouts(example_image_path(),
        ...                      QTable({"x": [100.0, 200.0], "y": [150.0, 150.0]}), size=16)
        >>> len(stack.wcs), stack.wcs[1].pixel_shape
        (2, (16, 16))
        """
        return _WCSList(self)

    def cutout_to_image(self, index, x, y):
        """
        Map pixel positions in cutouts to their parent image (0-based pixels).

        Parameters
        ----------
        index : int or array of int
            The cutout (row) of each position.
        x, y : float or array
            0-based pixel positions in the cutouts.

        Returns
        -------
        x, y : float or `~numpy.ndarray`
            0-based pixel positions in the parent images.

        Examples
        --------
        >>> from astropy.table import QTable
        >>> from astrofmtools.cutouts import make_cutouts
        >>> from astrofmtools.datasets import example_image_path
        >>> stack = make_cutouts(example_image_path(), QTable({"x": [150.2], "y": [140.7]}),
        ...                      size=32)
        >>> stack.cutout_to_image(0, stack.table["cutout_x"], stack.table["cutout_y"])
        (array([150.2]), array([140.7]))
        """
        index = np.asarray(index)
        x0, y0, s = (np.asarray(self.table[c])[index] for c in
                     ("cutout_x0", "cutout_y0", "cutout_scale"))
        return (x0 - 0.5 + (np.asarray(x, float) + 0.5) * s,
                y0 - 0.5 + (np.asarray(y, float) + 0.5) * s)

    def image_to_cutout(self, index, x, y):
        """
        Map parent-image pixel positions into cutouts (inverse of `cutout_to_image`).

        Parameters
        ----------
        index : int or array of int
            The cutout (row) of each position.
        x, y : float or array
            0-based pixel positions in the parent images.

        Returns
        -------
        x, y : float or `~numpy.ndarray`
            0-based pixel positions in the cutouts (resized ones included).

        Examples
        --------
        >>> from astropy.table import QTable
        >>> from astrofmtools.cutouts import make_cutouts
        >>> from astrofmtools.datasets import example_image_path
        >>> stack = make_cutouts(example_image_path(), QTable({"x": [150.0], "y": [140.0]}),
        ...                      size=32)
        >>> x, y = stack.image_to_cutout(0, 150.0, 140.0)
        >>> float(x), float(y)   # the centre convention: index size // 2
        (16.0, 16.0)
        """
        index = np.asarray(index)
        x0, y0, s = (np.asarray(self.table[c])[index] for c in
                     ("cutout_x0", "cutout_y0", "cutout_scale"))
        return ((np.asarray(x, float) - x0 + 0.5) / s - 0.5,
                (np.asarray(y, float) - y0 + 0.5) / s - 0.5)

    # ------------------------------------------------------------ combining
    @classmethod
    def concatenate(cls, stacks):
        """
        Join stacks of same-size cutouts into one.

        Parameters
        ----------
        stacks : sequence of `CutoutStack`
            Stacks whose cutouts have the same shape, unit and bands. Their tables
            are stacked (columns present in only some stacks are masked
            where absent).

        Returns
        -------
        stack : `CutoutStack`

        Raises
        ------
        astrofmtools.InputError
            If the cutout shapes, units or bands differ, or the tables cannot be
            joined; the message names the stacks.

        Examples
        --------
        >>> import numpy as np
        >>> from astrofmtools.cutouts import CutoutStack
        >>> a, b = CutoutStack(np.zeros((2, 8, 8))), CutoutStack(np.ones((3, 8, 8)))
        >>> CutoutStack.concatenate([a, b])
        <CutoutStack: 5 cutouts of 8x8>
        """
        stacks = list(stacks)
        if not stacks:
            raise InputError("concatenate needs at least one CutoutStack.")
        for k, s in enumerate(stacks):
            if not isinstance(s, CutoutStack):
                raise InputError(f"Item {k} given to concatenate is a {type(s).__name__}, "
                                 "not a CutoutStack.")
        shapes = {s.data.shape[1:] for s in stacks}
        if len(shapes) > 1:
            listing = ", ".join(f"stack {k}: {'x'.join(map(str, s.data.shape[1:]))}"
                                for k, s in enumerate(stacks))
            raise InputError(f"Cannot concatenate cutouts of different shapes ({listing}); "
                             "make them with the same size / output_size.")
        units = {s.unit for s in stacks}
        if len(units) > 1:
            listing = ", ".join(f"stack {k}: {s.unit}" for k, s in enumerate(stacks))
            raise InputError(f"Cannot concatenate cutouts with different units ({listing}).")
        bands = {(None if s.bands is None else tuple(s.bands),
                  None if s.band_units is None else tuple(map(str, s.band_units)))
                 for s in stacks}
        if len(bands) > 1:
            listing = "; ".join(f"stack {k}: " + (", ".join(
                f"{b} [{bu}]" if bu is not None else b
                for b, bu in zip(s.bands, s.band_units)) if s.bands else "no bands")
                for k, s in enumerate(stacks))
            raise InputError(f"Cannot concatenate cutouts of different bands ({listing}); "
                             "cut every image in the same bands, in the same order.")
        parents, tables, offset = [], [], 0
        for s in stacks:
            t = s.table.copy(copy_data=False)
            p = np.asarray(t["cutout_parent"])
            t["cutout_parent"] = np.where(p >= 0, p + offset, -1)
            t["cutout_parent"].info.description = CUTOUT_COLUMNS["cutout_parent"][2]
            t.meta = {}
            tables.append(t)
            parents.extend(s.parents)
            offset += len(s.parents)
        try:
            table = vstack(tables, join_type="outer", metadata_conflicts="silent")
        except Exception as exc:  # astropy raises several types for unjoinable columns
            listing = "; ".join(f"stack {k}: {', '.join(t.colnames)}"
                                for k, t in enumerate(tables))
            raise InputError(f"Cannot join the stacks' tables ({exc}). Their columns: "
                             f"{listing}.") from None
        table.meta = dict(stacks[0].table.meta)
        table.meta["concatenated"] = len(stacks)
        data = np.concatenate([s.data for s in stacks], axis=0)
        return cls(data, QTable(table, copy=False), parents, stacks[0].unit,
                   stacks[0].bands, stacks[0].band_units)

    # -------------------------------------------------------------------- I/O
    def write(self, path, overwrite=False):
        """
        Write the stack to one multi-extension FITS file.

        The primary HDU holds the cutout cube (``NAXIS3`` = cutout index),
        HDU ``CUTOUTS`` the table (SkyCoord and other columns kept, with
        units, descriptions and ``meta``), HDU ``PARENTS`` one row per
        parent image (its name and header, WCS at full precision). The
        band names and units of multi-band cutouts are primary-header
        keywords ``NBANDS``, ``BAND1``, ``BANDU1``, ... (FITS axis 3). Each
        cutout's WCS is rebuilt on reading from its parent's and the
        ``cutout_*`` columns, so the file does not hold N headers.

        Parameters
        ----------
        path : str or `~pathlib.Path`
            The output file (``.fits``).
        overwrite : bool, optional
            Replace an existing file.

        Examples
        --------
        >>> import numpy as np
        >>> from astrofmtools.cutouts import CutoutStack
        >>> CutoutStack(np.ones((2, 8, 8))).write("stack.fits", overwrite=True)
        >>> CutoutStack.read("stack.fits")
        <CutoutStack: 2 cutouts of 8x8>
        """
        table = self.table.copy(copy_data=False)
        # keep only the parents used, renumbered
        p = np.asarray(table["cutout_parent"], dtype=np.int64)
        valid = (p >= 0) & (p < len(self.parents))
        used = np.unique(p[valid]) if len(self) else np.arange(len(self.parents))
        remap = np.full(len(self.parents) + 1, -1, dtype=np.int64)
        remap[used] = np.arange(len(used))
        table["cutout_parent"] = np.where(valid, remap[np.where(valid, p, -1)], -1)
        table["cutout_parent"].info.description = CUTOUT_COLUMNS["cutout_parent"][2]
        parents = [self.parents[k] for k in used]

        primary = fits.PrimaryHDU(self.data if len(self) else None)
        hdr = primary.header
        hdr["ASTFMTYP"] = (_FILE_TYPE, "astrofmtools CutoutStack file")
        hdr["NCUTOUT"] = (len(self), "number of cutouts (last FITS axis)")
        hdr["CUTSHAPE"] = (",".join(str(n) for n in self.data.shape[1:]),
                           "shape of one cutout, numpy order")
        if self.unit is not None:
            hdr["BUNIT"] = self.unit.to_string("fits")
        if self.bands is not None:
            hdr["NBANDS"] = (len(self.bands), "named bands along FITS axis 3")
            for k, (name, unit) in enumerate(zip(self.bands, self.band_units), start=1):
                hdr[f"BAND{k}"] = (str(name), f"name of band {k} (FITS axis 3)")
                hdr[f"BANDU{k}"] = (_unit_string(unit), f"unit of band {k}")
        hdr.add_comment("Cutouts: FITS axes 1, 2 = cutout x, y; the last axis = row of "
                        "the CUTOUTS table. Per-cutout WCS: parent WCS (PARENTS HDU) "
                        "shifted by cutout_x0/cutout_y0 and scaled by cutout_scale.")
        with atomic_output(path, overwrite=overwrite) as tmp:
            hdul = fits.HDUList([primary, _table_hdu(table, "CUTOUTS"),
                                 _parents_hdu(parents)])
            hdul.writeto(tmp)

    @classmethod
    def read(cls, path):
        """
        Read a stack written by `write`.

        Parameters
        ----------
        path : str or `~pathlib.Path`
            The FITS file.

        Returns
        -------
        stack : `CutoutStack`

        Raises
        ------
        astrofmtools.InputError
            If the file is missing, unreadable or not a cutout stack file.

        Examples
        --------
        >>> from astropy.table import QTable
        >>> from astrofmtools.cutouts import CutoutStack, make_cutouts
        >>> from astrofmtools.datasets import example_image_path
        >>> stack = make_cutouts(example_image_path(), QTable({"x": [150.0], "y": [140.0]}),
        ...                      size=32)
        >>> stack.write("one.fits", overwrite=True)
        >>> again = CutoutStack.read("one.fits")
        >>> print(again.wcs_of(0).pixel_to_world(3, 4) == stack.wcs_of(0).pixel_to_world(3, 4))
        True
        """
        path = Path(path)
        if not path.exists():
            raise MissingFileError(f"File not found: {str(path)!r}.")
        try:
            hdul = fits.open(path, memmap=True)
        except (OSError, ValueError, TypeError, IndexError) as exc:
            raise InputError(f"{str(path)!r} is not a readable FITS file ({exc}).") from None
        with hdul:
            names = [h.name for h in hdul]
            if (hdul[0].header.get("ASTFMTYP") != _FILE_TYPE or "CUTOUTS" not in names
                    or "PARENTS" not in names):
                raise InputError(f"{str(path)!r} is not a CutoutStack file (it needs a "
                                 f"primary cube with ASTFMTYP = '{_FILE_TYPE}' and CUTOUTS "
                                 f"and PARENTS tables; its HDUs: {', '.join(names)}).")
            hdr = hdul[0].header
            shape = tuple(int(n) for n in str(hdr["CUTSHAPE"]).split(","))
            if hdul[0].data is None:
                data = np.empty((0,) + shape, dtype=np.float32)
            else:
                data = np.array(hdul[0].data, dtype=np.float32)
            unit = u.Unit(hdr["BUNIT"], parse_strict="silent") if "BUNIT" in hdr else None
            bands = band_units = None
            if "NBANDS" in hdr:
                nb = int(hdr["NBANDS"])
                bands = [str(hdr.get(f"BAND{k}", f"band{k - 1}")) for k in range(1, nb + 1)]
                band_units = [u.Unit(hdr[f"BANDU{k}"], parse_strict="silent")
                              if str(hdr.get(f"BANDU{k}", "")).strip() else None
                              for k in range(1, nb + 1)]
            table = _read_table_hdu(hdul["CUTOUTS"])
            ptab = hdul["PARENTS"].data
            parents = [CutoutParent.from_header_string(str(s), str(h))
                       for s, h in zip(ptab["source"], ptab["header"])] if ptab is not None \
                else []
        return cls(data, table, parents, unit, bands, band_units)


def _check_bands(data, bands, band_units):
    """Validated (bands, band_units) lists for ``data``, or (None, None)."""
    if bands is None:
        if band_units is not None:
            raise InputError("band_units needs bands (the band names).")
        return None, None
    if isinstance(bands, str):
        bands = [bands]
    bands = [str(b) for b in bands]
    if data.ndim != 4 or data.shape[1] != len(bands):
        raise InputError(f"{len(bands)} band names ({', '.join(bands)}) need cutouts of shape "
                         f"(N, {len(bands)}, H, W); the data have shape {data.shape}.")
    if len(set(bands)) != len(bands):
        raise InputError(f"The band names must differ; got {', '.join(bands)}.")
    if band_units is None:
        band_units = [None] * len(bands)
    band_units = [None if bu is None else u.Unit(bu, parse_strict="silent")
                  for bu in band_units]
    if len(band_units) != len(bands):
        raise InputError(f"{len(bands)} bands need {len(bands)} band_units; got "
                         f"{len(band_units)}.")
    return bands, band_units


def _band_index(bands, key):
    if isinstance(key, str):
        if key not in bands:
            raise InputError(f"There is no band {key!r}; the bands are: {', '.join(bands)}.")
        return bands.index(key)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) \
            and -len(bands) <= key < len(bands):
        return int(key) % len(bands)
    raise InputError(f"There is no band {key!r}; the bands are {', '.join(bands)} "
                     f"(or 0 to {len(bands) - 1}).")


def _unit_string(unit):
    if unit is None:
        return ""
    try:
        return unit.to_string("fits")
    except (ValueError, u.UnitsError):
        return unit.to_string()


class _WCSList(Sequence):
    """The WCS of each cutout of a stack, built when asked for."""

    def __init__(self, stack):
        self._stack = stack

    def __len__(self):
        return len(self._stack)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._stack.wcs_of(i) for i in range(*index.indices(len(self)))]
        return self._stack.wcs_of(index)

    def __repr__(self):
        return f"<{len(self)} cutout WCS, built on demand>"


def _cutout_wcs(parent, x0, y0, scale, shape):
    """The WCS of a crop starting at parent pixel (x0, y0), resampled by ``scale``."""
    new = parent.deepcopy()
    crpix = np.array(parent.wcs.crpix, dtype=float)
    offset = np.array([x0, y0], dtype=float)
    if scale == 1:
        new.wcs.crpix = crpix - offset
    else:
        new.wcs.crpix = (crpix - offset - 0.5) / scale + 0.5
        if parent.wcs.has_cd():
            new.wcs.cd = np.array(parent.wcs.cd) * scale
        else:
            new.wcs.cdelt = np.array(parent.wcs.cdelt) * scale
    if parent.sip is not None:
        def rescale(coeffs):
            if coeffs is None or scale == 1:
                return coeffs
            p, q = np.indices(coeffs.shape)
            return coeffs * scale ** (p + q - 1.0)
        sip = parent.sip
        new.sip = Sip(rescale(sip.a), rescale(sip.b), rescale(sip.ap), rescale(sip.bp),
                      new.wcs.crpix)
    tables = [t for t in (new.cpdis1, new.cpdis2, new.det2im1, new.det2im2) if t is not None]
    if tables:
        if scale != 1:
            raise InputError("The parent image has lookup-table distortions (CPDIS/D2IMDIS), "
                             "which resized cutouts do not support; use a fixed size.")
        for t in tables:
            t.crval[0] -= x0
            t.crval[1] -= y0
    new.pixel_shape = (int(shape[1]), int(shape[0]))
    return new


def _dump_meta(meta):
    try:
        text = yaml.dump(dict(meta))
    except Exception:  # noqa: BLE001 - values yaml cannot represent are kept as text
        text = yaml.dump({str(k): _plain(v) for k, v in meta.items()})
    return json.dumps(text)  # one ASCII line: a FITS long-string card


def _plain(value):
    try:
        yaml.dump(value)
        return value
    except Exception:  # noqa: BLE001
        return repr(value)


def _table_hdu(table, name):
    meta = table.meta
    out = table.copy(copy_data=False)
    out.meta = {}
    buffer = io.BytesIO()
    out.write(buffer, format="fits")
    buffer.seek(0)
    with fits.open(buffer) as hdul:
        hdu = fits.BinTableHDU(data=hdul[1].data.copy(), header=hdul[1].header.copy(),
                               name=name)
    hdu.header["ASTFMETA"] = (_dump_meta(meta), "table meta (YAML in a JSON string)")
    return hdu


def _read_table_hdu(hdu):
    table = QTable.read(hdu, character_as_bytes=False)
    text = hdu.header.get("ASTFMETA")
    table.meta = yaml.load(json.loads(text)) if text else {}
    return table


def _parents_hdu(parents):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        headers = [p.header.tostring(sep="", endcard=False, padding=False) for p in parents]
    sources = [p.source for p in parents]
    width_s = max([len(s) for s in sources] + [1])
    width_h = max([len(h) for h in headers] + [1])
    t = Table({"source": np.array(sources, dtype=f"U{width_s}"),
               "header": np.array(headers, dtype=f"U{width_h}")})
    hdu = fits.table_to_hdu(t)
    hdu.name = "PARENTS"
    return hdu
