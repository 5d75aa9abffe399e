# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""`CutoutStack`: cutout pixels, their source table and a WCS per cutout."""

import numpy as np
import astropy.units as u
from astropy.table import QTable, vstack

from ..exceptions import InputError
from .columns import CUTOUT_COLUMNS
from .cutout_wcs import _WCSList, _cutout_wcs
from .parents import CutoutParent  # noqa: F401 - importable from here too
from .stack_bands import _band_index, _check_bands
from .stack_fits import _read_stack, _write_stack

__all__ = ["CutoutStack"]


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
        _write_stack(self, path, overwrite=overwrite)

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
        return _read_stack(cls, path)
