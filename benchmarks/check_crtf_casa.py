"""
Check the CRTF region files astrofmtools writes with CASA's own region parser.

DS9 cannot read CRTF, and CARTA has no Python package; casatools (CASA's
tools, on PyPI) can. For circles, ellipses and boxes, with text labels and
colours, this script

1. finds sources in an image (the FIRST example by default) and writes
   them as CRTF with `astrofmtools.catalog.write_regions`;
2. converts the image to a CASA image (``image.fromfits``) for its
   coordinate system, and parses each file with
   ``regionmanager.fromtextfile`` (the whole file: every region must be
   read), then each region line with ``regionmanager.fromtext``;
3. asks CASA which pixels each region holds (``image.getregion`` mask)
   and compares their centroid and count with the pixels the `regions`
   package puts inside our region: a CRTF misread (swapped axes, radians
   for degrees, a half-width for a width, a wrong angle) moves the centre
   or changes the area.

Run by hand (``bash benchmarks/check_clients.sh`` calls it)::

    pip install casatools
    python benchmarks/check_crtf_casa.py [IMAGE.fits] [OUTDIR]

casatools refuses to import without its measures (IERS) data, which it
downloads; offline, the script points CASA at an empty placeholder table
(regions in ICRS need no Earth-orientation data). Exit status 0 when every
region matches (centre within 0.5 pixel, area within 10 % or 2 pixels),
1 otherwise, 3 when casatools is not installed.
"""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np


def _casa_offline(folder):
    """A casaconfig site file that neither downloads nor logs, for an offline machine."""
    data = Path(folder) / "casa-data"
    (data / "geodetic" / "IERSeop2000").mkdir(parents=True, exist_ok=True)
    site = Path(folder) / "casasiteconfig.py"
    site.write_text(f"measurespath = {str(data)!r}\nmeasures_auto_update = False\n"
                    "data_auto_update = False\nnologfile = True\nskipnetworkcheck = True\n"
                    "casaconfig_verbose = 0\n")
    os.environ.setdefault("CASASITECONFIG", str(site.resolve()))


def _table(image):
    from astrofmtools.sources import find_sources

    table = find_sources(image, snr=5.0)
    table["label"] = np.where(np.asarray(table["snr"]) > 20, "bright", "faint")
    table["score"] = np.clip(np.asarray(table["snr"]) / 100, 0, 1)
    return table


def _our_mask(region, wcs, shape):
    """The pixels (y, x) whose centres lie in our region, by the regions package."""
    mask = region.to_pixel(wcs).to_mask(mode="center").to_image(shape)
    return np.zeros(shape, bool) if mask is None else mask.astype(bool)


def _casa_mask(ia, record, shape):
    """The pixels (y, x) CASA puts in a region: its mask within the region's bounding box."""
    box = ia.boundingbox(region=record)
    (x0, y0), (x1, y1) = box["blc"][:2], box["trc"][:2]
    inside = ia.getregion(region=record, getmask=True, dropdeg=True)  # (x, y) order
    mask = np.zeros(shape, bool)
    mask[y0:y1 + 1, x0:x1 + 1] = np.asarray(inside, bool).reshape(x1 - x0 + 1, y1 - y0 + 1).T
    return mask


def _centroid(mask):
    ys, xs = np.nonzero(mask)
    return (xs.mean(), ys.mean()) if xs.size else (np.nan, np.nan)


def main(argv):
    from astrofmtools.catalog import write_regions
    from astrofmtools.datasets import example_image_path
    from astrofmtools.io import load_image
    import regions as rg

    image_path = Path(argv[1] if len(argv) > 1 and argv[1] else example_image_path()).resolve()
    out = Path(argv[2] if len(argv) > 2 else tempfile.mkdtemp(prefix="crtf-casa-"))
    out.mkdir(parents=True, exist_ok=True)
    _casa_offline(out)
    try:
        import casatools
    except ImportError as exc:
        print(f"casatools is not importable here ({exc}); pip install casatools")
        return 3
    print(f"casatools {casatools.version_string()}; image {image_path}")

    image = load_image(image_path)
    table = _table(image)
    casa_image = str(out / "image.im")
    ia = casatools.image()
    ia.fromfits(outfile=casa_image, infile=str(image_path), overwrite=True)
    csys, shape = ia.coordsys().torecord(), list(ia.shape())
    rgm = casatools.regionmanager()

    rows, ok = [], True
    for shape_name in ("circle", "ellipse", "box"):
        path = out / f"sources_{shape_name}.crtf"
        write_regions(table, path, format="crtf", shape=shape_name, wcs=image, text=True,
                      color_by="score", overwrite=True)
        lines = path.read_text().splitlines()
        header = [line for line in lines if line.startswith(("#", "global"))]
        body = [line for line in lines if line and line not in header]
        whole = rgm.fromtextfile(filename=str(path), shape=shape, csys=csys)
        # a union record: its regions under keys '*1', '*2'... (and their count, 'nr')
        n_casa = (sum(key.startswith("*") for key in whole["regions"])
                  if "regions" in whole else 1)
        ours = rg.Regions.read(str(path), format="crtf")
        labelled = sum("label='" in line for line in body)
        coloured = sum("color=" in line for line in body)
        for k, (line, region) in enumerate(zip(body, ours)):
            record = rgm.fromtext(text="\n".join(header + [line]), shape=shape, csys=csys)
            casa_mask = _casa_mask(ia, record, image.shape)
            mine = _our_mask(region, image.wcs, image.shape)
            (cx, cy), (mx, my) = _centroid(casa_mask), _centroid(mine)
            shift = float(np.hypot(cx - mx, cy - my))
            n_c, n_m = int(casa_mask.sum()), int(mine.sum())
            good = shift <= 0.5 and abs(n_c - n_m) <= max(2, 0.1 * n_m)
            ok &= good
            rows.append((shape_name, k + 1, mx, my, cx, cy, shift, n_m, n_c, good))
        print(f"{path.name}: CASA read {n_casa} of {len(body)} regions from the file "
              f"({labelled} with label=, {coloured} with color=)")
        ok &= n_casa == len(body)
    print(f"\n{'shape':8} {'#':>3} {'our x':>8} {'our y':>8} {'CASA x':>8} {'CASA y':>8} "
          f"{'shift':>6} {'our px':>6} {'CASA px':>7}  ok")
    for name, k, mx, my, cx, cy, shift, n_m, n_c, good in rows:
        print(f"{name:8} {k:3d} {mx:8.2f} {my:8.2f} {cx:8.2f} {cy:8.2f} {shift:6.2f} "
              f"{n_m:6d} {n_c:7d}  {'yes' if good else 'NO'}")
    shifts = np.array([r[6] for r in rows])
    print(f"\n{len(rows)} regions: max centre shift {np.nanmax(shifts):.3f} pixel; "
          f"{'all match' if ok else 'MISMATCH'}")
    ia.done()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
