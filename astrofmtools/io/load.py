# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Load any FITS image input into a `SkyImage`."""

import os
import warnings
from pathlib import Path

import numpy as np
import astropy.units as u
from astropy.io import fits
from astropy.nddata import NDData
from astropy.wcs import WCS, FITSFixedWarning, SingularMatrixError
from astropy.io.fits.verify import VerifyWarning

from ..exceptions import InputError, MissingFileError
from .image import Beam, SkyImage
from .lazy import FitsPixels, read_lazily

__all__ = ["load_image", "SURVEY_BEAMS"]

#: Restoring beams (FWHM) of radio surveys whose cutout services (SkyView)
#: write no ``BMAJ``/``BMIN``; used when the header's ``SURVEY`` names one.
SURVEY_BEAMS = {
    "FIRST": Beam(5.4 * u.arcsec, 5.4 * u.arcsec, 0 * u.deg),
    "NVSS": Beam(45 * u.arcsec, 45 * u.arcsec, 0 * u.deg),
    "VLASS": Beam(2.5 * u.arcsec, 2.5 * u.arcsec, 0 * u.deg),
    "TGSS": Beam(25 * u.arcsec, 25 * u.arcsec, 0 * u.deg),
    "LOTSS": Beam(6 * u.arcsec, 6 * u.arcsec, 0 * u.deg),
}

_IMAGE_HDUS = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)


def load_image(source, hdu=None, plane=None, beam=None, memmap=None):
    """
    Load a 2-D sky image from any FITS input.

    Parameters
    ----------
    source : str, `~pathlib.Path`, `~astropy.io.fits.HDUList`, HDU, tuple or NDData
        A FITS file name, an open HDU list, one image HDU, a tuple
        ``(array, WCS)`` or ``(array, Header)`` or ``(array, None)``, an
        NDData (its ``wcs``, ``unit``, ``mask`` and ``meta['header']`` are
        used) or a `SkyImage` (returned unchanged).
    hdu : int, str or tuple, optional
        The HDU to read (index, ``EXTNAME`` or ``(EXTNAME, EXTVER)``). By
        default the first HDU that holds image data.
    plane : int or tuple of int, optional
        For cubes, the 0-based index along each axis beyond the two sky axes
        (numpy order: the outermost FITS axis first). Axes of length 1, such
        as the FREQ and STOKES axes CASA and SkyView write, are dropped
        without it.
    beam : `Beam`, optional
        The beam, when the header does not give it (``BMAJ``/``BMIN``) and
        the ``SURVEY`` keyword names no survey in `SURVEY_BEAMS`.
    memmap : bool, optional
        Leave the pixels in the file and read them block by block when
        sliced (a `~astrofmtools.io.FitsPixels`) instead of reading them
        into memory. By default this is decided by size: files with more
        pixels than `~astrofmtools.io.read_lazily` allows (256 MiB, or a
        quarter of the memory available when that is less) are read on
        demand, and the tiled stages (`~astrofmtools.io.map_tiles`) then
        hold one tile at a time.

    Returns
    -------
    image : `SkyImage`
        ``data`` (2-D), ``wcs`` (2-D celestial WCS, or None when the header
        has no sky axes), ``unit`` (from ``BUNIT``), ``beam``, ``mask``
        (True where there is no data: NaN or ``BLANK`` pixels; None for an
        image read on demand, whose tiles carry NaN there), ``header`` and
        ``source`` (file and HDU).

    Raises
    ------
    astrofmtools.InputError
        For a missing, non-FITS or truncated file, a missing or non-image
        HDU, a cube without ``plane``, an empty or all-NaN image, a WCS
        whose CD/PC matrix is singular or not finite (pixels of no size),
        or a WCS given with the array whose axes do not match it and are
        not celestial. The message names the file and HDU.

    Examples
    --------
    >>> from astrofmtools.datasets import example_image_path
    >>> from astrofmtools.io import load_image
    >>> image = load_image(example_image_path())
    >>> image.shape, image.unit
    ((300, 300), Unit("Jy / beam"))
    >>> image.beam.major.to("arcsec")  # FIRST's beam, from the SURVEY keyword
    <Quantity 5.4 arcsec>
    >>> sky = image.wcs.pixel_to_world(149.5, 149.5)  # numpy/0-based pixels
    """
    if isinstance(source, SkyImage):
        return source
    # SkyView writes tab characters into COMMENT cards: astropy warns on
    # every access, yet the pixels and WCS read fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        return _load(source, hdu=hdu, plane=plane, beam=beam, memmap=memmap)


def _load(source, hdu, plane, beam, memmap):
    if isinstance(source, NDData):
        header = (source.meta or {}).get("header")
        return _build(np.asarray(source.data), source.wcs, header, unit=source.unit,
                      mask=source.mask, name="<NDData>", plane=plane, beam=beam)
    if isinstance(source, tuple):
        return _from_tuple(source, plane=plane, beam=beam)
    if isinstance(source, (str, os.PathLike)):
        return _from_file(Path(source), hdu=hdu, plane=plane, beam=beam, memmap=memmap)
    if isinstance(source, fits.HDUList):
        return _from_hdulist(source, "<HDUList>", hdu=hdu, plane=plane, beam=beam,
                             memmap=memmap)
    if isinstance(source, _IMAGE_HDUS):
        return _from_hdu(source, "<HDU>", plane=plane, beam=beam, memmap=memmap)
    if isinstance(source, (fits.BinTableHDU, fits.TableHDU)):
        raise InputError(f"The HDU given ({source.name!r}) is a table, not an image.")
    raise InputError(f"Cannot load an image from a {type(source).__name__}: pass a FITS "
                     "file name, an HDUList, an image HDU, (array, WCS), or an NDData.")


def _from_tuple(source, plane, beam):
    if len(source) != 2:
        raise InputError("An image tuple must be (array, WCS), (array, Header) or (array, None).")
    data, meta = source
    header = wcs = None
    if isinstance(meta, fits.Header):
        header = meta
    elif isinstance(meta, WCS):
        wcs = meta
    elif meta is not None:
        raise InputError(f"The second item of an image tuple must be a WCS or a Header, "
                         f"not a {type(meta).__name__}.")
    return _build(np.asarray(data), wcs, header, name="<array>", plane=plane, beam=beam)


def _from_file(path, hdu, plane, beam, memmap):
    if not path.exists():
        raise MissingFileError(f"File not found: {str(path)!r}.")
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a folder, not a FITS file.")
    if path.stat().st_size == 0:
        raise InputError(f"{str(path)!r} is empty (0 bytes), not a FITS file.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(path, lazy_load_hdus=False)
        except (OSError, ValueError, TypeError, IndexError) as exc:
            raise InputError(f"{str(path)!r} is not a readable FITS file ({exc}).") from None
    for w in caught:
        if "truncated" in str(w.message):
            hdul.close()
            raise InputError(f"{str(path)!r} is truncated: {w.message}.")
    # Closing the file keeps memory-mapped pixels valid: numpy holds the map.
    with hdul:
        return _from_hdulist(hdul, str(path), hdu=hdu, plane=plane, beam=beam, memmap=memmap)


def _describe(hdul):
    rows = []
    for i, h in enumerate(hdul):
        naxis = [h.header.get(f"NAXIS{k}", 0) for k in range(1, h.header.get("NAXIS", 0) + 1)]
        shape = "x".join(str(n) for n in naxis) if naxis else "no data"
        rows.append(f"{i}: {h.name} ({type(h).__name__}, {shape})")
    return "; ".join(rows)


def _has_image(h):
    return isinstance(h, _IMAGE_HDUS) and h.header.get("NAXIS", 0) > 0 and all(
        h.header.get(f"NAXIS{k}", 0) > 0 for k in range(1, h.header["NAXIS"] + 1))


def _from_hdulist(hdul, name, hdu, plane, beam, memmap):
    if len(hdul) == 0:
        raise InputError(f"{name} holds no HDU.")
    if hdu is None:
        for index, h in enumerate(hdul):
            if _has_image(h):
                break
        else:
            raise InputError(f"{name} has no HDU with image data. Its HDUs: {_describe(hdul)}.")
    else:
        try:
            index = hdul.index_of(hdu)
            h = hdul[index]
        except (KeyError, IndexError):
            raise InputError(f"{name} has no HDU {hdu!r}; it has {len(hdul)} HDU(s): "
                             f"{_describe(hdul)}.") from None
        if isinstance(h, (fits.BinTableHDU, fits.TableHDU)):
            raise InputError(f"HDU {hdu!r} of {name} is a table, not an image. Its HDUs: "
                             f"{_describe(hdul)}.")
    return _from_hdu(h, f"{name}[{index}]", plane=plane, beam=beam, memmap=memmap, hdul=hdul)


def _from_hdu(h, name, plane, beam, memmap, hdul=None):
    header = h.header
    if not _has_image(h):
        raise InputError(f"HDU {name} holds no image data (NAXIS={header.get('NAXIS', 0)}).")
    path = hdul.filename() if hdul is not None else None
    if memmap is None:  # decided by size, never by the kind of array astropy returns
        memmap = read_lazily(_stored_bytes(header))
    if memmap and path is not None:
        try:
            data = FitsPixels(path, hdul.index_of(h))
        except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise InputError(f"Cannot read the pixels of {name} ({exc}).") from None
    else:
        memmap = False
        try:
            data = h.data
            if data is not None:
                data[(0,) * data.ndim]  # touch the file: a truncated one fails here
                data[(-1,) * data.ndim]
        except (OSError, ValueError, TypeError, IndexError) as exc:
            raise InputError(f"Cannot read the pixels of {name}; the file may be truncated "
                             f"({exc}).") from None
        if data is None:
            raise InputError(f"HDU {name} holds no image data.")
    wcs = None
    if _header_has_celestial(header):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            try:
                wcs = WCS(header, fobj=hdul, relax=True)
            except SingularMatrixError:
                raise InputError(_singular(name)) from None
            except Exception as exc:  # astropy raises several types here
                raise InputError(f"The WCS of {name} cannot be read ({exc}).") from None
    return _build(data, wcs, header, name=name, plane=plane, beam=beam, memmap=memmap)


def _stored_bytes(header):
    """Bytes of pixels an image HDU holds, from its header alone."""
    bitpix = header.get("ZBITPIX", header.get("BITPIX", 8))
    naxis = header.get("ZNAXIS", header.get("NAXIS", 0))
    key = "ZNAXIS" if "ZNAXIS" in header else "NAXIS"
    return int(np.prod([header.get(f"{key}{k}", 0) for k in range(1, naxis + 1)],
                       dtype=np.int64)) * abs(int(bitpix)) // 8


def _header_has_celestial(header):
    naxis = max(header.get("NAXIS", 0), header.get("WCSAXES", 0), 2)
    ctypes = [str(header.get(f"CTYPE{k}", "")) for k in range(1, naxis + 1)]
    return any(c[:4] in ("RA--", "DEC-", "GLON", "GLAT", "ELON", "ELAT") or c[1:4] in
               ("LON", "LAT") for c in ctypes)


def _parse_unit(bunit):
    if bunit is None or str(bunit).strip() == "":
        return None
    text = str(bunit).strip()
    for candidate in (text, text.replace("JY", "Jy").replace("BEAM", "beam"),
                      text.replace("JY", "Jy").replace("BEAM", "beam").replace("PIXEL", "pix")):
        for fmt in ("fits", None):
            try:
                return u.Unit(candidate, format=fmt)
            except ValueError:
                continue
    return u.Unit(text, parse_strict="silent")


def _select_plane(data, wcs, name, plane):
    """Drop length-1 axes beyond the sky axes, or pick the plane asked for."""
    extra = data.shape[:-2]
    if not extra:
        return data, wcs
    if plane is None:
        big = [(k, n) for k, n in enumerate(extra) if n > 1]
        if big:
            k, n = big[0]
            fits_axis = data.ndim - k
            ctype = ""
            if wcs is not None and fits_axis <= wcs.naxis:
                ctype = f" ({wcs.wcs.ctype[fits_axis - 1] or 'no CTYPE'})"
            raise InputError(
                f"{name} is a {data.ndim}-D cube: FITS axis {fits_axis}{ctype} has {n} planes. "
                f"Choose one with plane=... (0-based; a tuple of {len(extra)} indices, "
                "outermost axis first), e.g. load_image(..., plane="
                f"{(0,) * len(extra) if len(extra) > 1 else 0}).")
        index = (0,) * len(extra)
    else:
        index = (plane,) if np.isscalar(plane) else tuple(plane)
        if len(index) != len(extra) or any(not 0 <= i < n for i, n in zip(index, extra)):
            raise InputError(f"plane={plane!r} does not fit {name}, whose axes beyond the "
                             f"sky axes have lengths {extra} (numpy order).")
    data = FitsPixels(data.path, data.hdu, index) if isinstance(data, FitsPixels) \
        else data[index]
    if wcs is not None:
        wcs = wcs.celestial if wcs.naxis > 2 else wcs
    return data, wcs


def _build(data, wcs, header, name, plane=None, beam=None, unit=None, mask=None, memmap=False):
    if data.ndim < 2:
        raise InputError(f"{name} is {data.ndim}-D; an image needs two axes.")
    if data.size == 0:
        raise InputError(f"{name} is empty (shape {data.shape}).")
    if wcs is None and header is not None and _header_has_celestial(header):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            try:
                wcs = WCS(header, relax=True)
            except SingularMatrixError:
                raise InputError(_singular(name)) from None
    ndim = data.ndim
    data, wcs = _select_plane(data, wcs, name, plane)
    if wcs is not None:
        if not wcs.has_celestial:
            if wcs.naxis != ndim:
                raise InputError(f"The WCS given with {name} has {wcs.naxis} axes "
                                 f"({', '.join(map(repr, wcs.wcs.ctype)) or 'no CTYPE'}), none "
                                 f"of them celestial, but the array has {ndim}: its axes do "
                                 "not match the array. Give the image's 2-D celestial WCS.")
            wcs = None
        elif wcs.naxis > 2 or wcs.wcs.lng != 0 or wcs.wcs.lat != 1:
            celestial = wcs.celestial
            if wcs.wcs.lng not in (0, 1) or wcs.wcs.lat not in (0, 1):
                raise InputError(f"The sky axes of {name} are not its first two axes; "
                                 "reorder the cube so that they are.")
            wcs = celestial
    if wcs is not None:
        _check_pixel_scale(wcs, header, name)
    if header is not None:
        if unit is None:
            unit = _parse_unit(header.get("BUNIT"))
        if beam is None:
            beam = Beam.from_header(header)
        if beam is None:
            survey = str(header.get("SURVEY", "")).strip().upper().split()[:1]
            beam = SURVEY_BEAMS.get(survey[0]) if survey else None
    if not memmap:
        data = _native(data, header, name)
        finite = np.isfinite(data)
        if not finite.any():
            raise InputError(f"{name} has no finite pixel: every pixel is NaN, Inf or BLANK.")
        nodata = ~finite
        if mask is not None:
            nodata |= np.asarray(mask, dtype=bool)
        mask = nodata if nodata.any() else np.zeros(data.shape, dtype=bool)
    return SkyImage(data, wcs=wcs, unit=unit, mask=mask, beam=beam, header=header,
                    source=name)


def _singular(name, detail="singular"):
    return (f"{name} cannot be placed on the sky: its WCS has a {detail} CD/PC matrix (the "
            "CDi_j, or PCi_j times CDELTi, keywords of the celestial axes), so its pixels "
            "have no size or direction. Fix the header's CD1_1..CD2_2 (or CDELT1/2 and "
            "PC1_1..PC2_2).")


def _check_pixel_scale(wcs, header, name):
    """Refuse a celestial WCS whose pixel scale matrix is singular or not finite."""
    try:
        matrix = wcs.pixel_scale_matrix
    except SingularMatrixError:
        raise InputError(_singular(name)) from None
    if not np.all(np.isfinite(matrix)):
        raise InputError(_singular(name, "non-finite (NaN or Inf)"))
    if np.linalg.det(matrix) == 0:
        raise InputError(_singular(name))
    if header is not None:
        # wcslib takes an all-zero CD matrix for an absent one (1 deg pixels): read the
        # header's own CDi_j of the celestial axes (FITS axes 1 and 2, checked above)
        keys = [f"CD{i}_{j}" for i in (1, 2) for j in (1, 2)]
        if any(k in header for k in keys):
            try:
                cd = np.array([float(header.get(k, 0.0)) for k in keys]).reshape(2, 2)
            except (TypeError, ValueError):
                return
            if not np.all(np.isfinite(cd)) or np.linalg.det(cd) == 0:
                raise InputError(_singular(name))


def _native(data, header, name):
    """Pixels in memory, native byte order, float, BLANK as NaN."""
    if data.dtype.kind in "iu":
        blank = header.get("BLANK") if header is not None else None
        out = data.astype(np.float32 if data.dtype.itemsize <= 2 else np.float64)
        if blank is not None:
            out[data == blank] = np.nan
        return out
    if data.dtype.kind != "f":
        raise InputError(f"{name} has pixels of type {data.dtype}, not numbers.")
    return np.array(data, dtype=data.dtype.newbyteorder("="))
