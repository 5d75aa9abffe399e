# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Pixels of a large FITS image read on demand (`FitsPixels`), and the rule
that decides, by size and the memory available, when an image is read that
way (`read_lazily`).

astropy returns a plain ndarray for a memory-mapped HDU, and the pages of a
memory map count towards a process's resident memory once touched, so a
whole-mosaic pass through a memory map grows to the size of the file.
`FitsPixels` instead reads the requested block through
`astropy.io.fits.ImageHDU.section` from a file opened without a memory map:
only the block is in memory. It reopens its file by name, so it pickles in
a few bytes and a Dask worker reads its own tiles.
"""

import os
import warnings

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

__all__ = ["FitsPixels", "available_memory", "read_lazily", "LAZY_ABOVE"]

#: Images with more bytes of pixels than this (or than a quarter of the memory
#: available, when that is less) are read on demand instead of whole.
LAZY_ABOVE = 256 << 20


def available_memory():
    """
    The memory available to new allocations, in bytes (psutil's estimate).

    Returns
    -------
    nbytes : int
        ``psutil.virtual_memory().available``, or 8 GiB when psutil is missing.

    Examples
    --------
    >>> from astrofmtools.io import available_memory
    >>> available_memory() > 0
    True
    """
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with the test and ml extras
        return 8 << 30
    return int(psutil.virtual_memory().available)


def read_lazily(nbytes, threshold=None):
    """
    Whether an image of ``nbytes`` bytes of pixels should be read on demand.

    Parameters
    ----------
    nbytes : int
        Bytes of pixels in the file.
    threshold : int, optional
        The size above which to read on demand (default: `LAZY_ABOVE`, or a
        quarter of the available memory when that is less).

    Returns
    -------
    lazy : bool

    Examples
    --------
    >>> from astrofmtools.io import read_lazily
    >>> read_lazily(4 * 300 * 300), read_lazily(4 * 16_500 ** 2)
    (False, True)
    """
    if threshold is None:
        threshold = min(LAZY_ABOVE, available_memory() // 4)
    return nbytes > threshold


class FitsPixels:
    """
    The pixels of one FITS image HDU, read block by block when sliced.

    Slicing returns a float copy in native byte order (BLANK, and NaN in
    the file, as NaN; BSCALE/BZERO applied by astropy); ``numpy.asarray``
    reads the whole image. Each read opens the file, so threads can read
    at once and the object pickles as the file name, HDU and plane: Dask
    workers read their own blocks from a shared file system.

    Parameters
    ----------
    path : str
        The FITS file.
    hdu : int
        Index of the image HDU.
    plane : tuple of int, optional
        Indices along the axes beyond the two sky axes (numpy order), for
        cubes.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from astropy.io import fits
    >>> from astrofmtools.io import FitsPixels
    >>> path = os.path.join(tempfile.mkdtemp(), "ints.fits")
    >>> hdu = fits.PrimaryHDU(np.arange(12, dtype=np.int16).reshape(3, 4))
    >>> hdu.header["BLANK"] = 5
    >>> hdu.writeto(path)
    >>> pixels = FitsPixels(path, 0)
    >>> pixels.shape, pixels.dtype
    ((3, 4), dtype('float32'))
    >>> pixels[1, :3]
    array([ 4., nan,  6.], dtype=float32)
    """

    def __init__(self, path, hdu, plane=()):
        self.path, self.hdu, self.plane = str(path), int(hdu), tuple(int(i) for i in plane)
        shape, header = self._read(None)
        if len(self.plane) > len(shape) - 2:
            raise ValueError(f"plane {self.plane} has more indices than {self.path}[{hdu}] "
                             f"has axes beyond the sky axes (shape {shape}).")
        self.shape = shape[len(self.plane):]
        kind = np.dtype(_raw_dtype(header))
        scaled = "BSCALE" in header or "BZERO" in header
        if kind.kind == "f" and not scaled:
            self.dtype = kind.newbyteorder("=")
        else:
            self.dtype = np.dtype(np.float32 if kind.itemsize <= 2 and kind.kind in "iu"
                                  else np.float64 if kind.kind in "iu" else kind)
        self._blank = header.get("BLANK") if kind.kind in "iu" else None

    @property
    def ndim(self):
        """Number of axes."""
        return len(self.shape)

    @property
    def size(self):
        """Number of pixels."""
        return int(np.prod(self.shape))

    @property
    def nbytes(self):
        """Bytes of the pixels once read."""
        return self.size * self.dtype.itemsize

    def _read(self, key):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VerifyWarning)
            with fits.open(self.path, memmap=False, lazy_load_hdus=True) as hdul:
                h = hdul[self.hdu]
                if key is None:
                    return tuple(h.shape), h.header.copy()
                return np.asarray(h.section[self.plane + key])

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            at = next(i for i, k in enumerate(key) if k is Ellipsis)
            fill = (slice(None),) * (self.ndim - len(key) + 1)
            key = key[:at] + fill + key[at + 1:]
        block = self._read(key)
        if self._blank is not None and block.dtype.kind in "iu":
            bad = block == self._blank
            block = block.astype(self.dtype)
            block[bad] = np.nan
        return np.array(block, dtype=self.dtype)

    def __array__(self, dtype=None, copy=None):
        data = self[(slice(None),) * self.ndim]
        return data if dtype is None else data.astype(dtype, copy=False)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        plane = f", plane {self.plane}" if self.plane else ""
        return (f"<FitsPixels {'x'.join(map(str, self.shape))} {self.dtype} from "
                f"{os.path.basename(self.path)}[{self.hdu}]{plane}, read on demand>")


def _raw_dtype(header):
    """The dtype of the pixels as stored (BITPIX)."""
    return {8: np.uint8, 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4",
            -64: ">f8"}[int(header["BITPIX"] if "ZBITPIX" not in header else header["ZBITPIX"])]
