# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
How fast is `make_cutouts`? Run by hand (never in CI)::

    python benchmarks/cutouts.py [--n 10000] [--size 64] [--image 4096]

It writes a float32 FITS mosaic with a TAN WCS to a temporary folder, opens
it memory-mapped and cuts ``--n`` stamps of ``--size`` pixels around random
positions (about 2% of them run off the image) with:

- **numpy floor**: a loop of plain slices of the memory map into a
  preallocated float32 array (positions clipped so every slice is inside);
- **numpy sliding window**: the same, one fancy-indexing call on
  `numpy.lib.stride_tricks.sliding_window_view`;
- **make_cutouts**: `astrofmtools.cutouts.make_cutouts` from the file name
  (opening the file, the WCS, edge filling and flags, the output table);
- **make_cutouts + all WCS**: the same, then every cutout's WCS built;
- **Cutout2D loop**: `astropy.nddata.Cutout2D` with the WCS for each source
  (``mode="partial"``, NaN fill) copied into a preallocated array;
- **make_cutouts size="bbox"** (for information): close crops around random
  bounding boxes of 8 to 120 pixels, resized to ``--size`` (``--bbox-n``
  sources; the per-cutout time is what matters).

The page cache is warmed first, so the numbers compare CPU work, not disk.
"""

import argparse
import os
import tempfile
import time

import numpy as np
from astropy.io import fits
from astropy.nddata import Cutout2D, NoOverlapError
from astropy.table import QTable
from astropy.wcs import WCS


def make_mosaic(path, n):
    rng = np.random.default_rng(0)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [n / 2 + 0.5, n / 2 + 0.5]
    wcs.wcs.cdelt = [-1.8 / 3600, 1.8 / 3600]
    data = rng.normal(0, 1e-4, (n, n)).astype(np.float32)
    header = wcs.to_header()
    header["BUNIT"] = "Jy/beam"
    fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)
    return wcs


def best_of(func, repeat):
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of cutouts")
    parser.add_argument("--size", type=int, default=64, help="cutout side (pixels)")
    parser.add_argument("--image", type=int, default=4096, help="mosaic side (pixels)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--bbox-n", type=int, default=2000,
                        help="sources for the close-crop (size='bbox') timing; 0 to skip")
    parser.add_argument("--cutout2d-n", type=int, default=None,
                        help="time Cutout2D on this many sources and scale up (default: all)")
    args = parser.parse_args()

    from astrofmtools.cutouts import make_cutouts

    n, size, side = args.n, args.size, args.image
    rng = np.random.default_rng(1)
    x = rng.uniform(-0.01 * side, 1.01 * side, n)
    y = rng.uniform(-0.01 * side, 1.01 * side, n)
    table = QTable({"x": x, "y": y})

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mosaic.fits")
        wcs = make_mosaic(path, side)
        with open(path, "rb") as f:  # warm the page cache
            while f.read(1 << 24):
                pass
        with fits.open(path, memmap=True) as hdul:
            data = hdul[0].data  # a big-endian memory map
            x0 = np.clip(np.floor(x + 0.5).astype(int) - size // 2, 0, side - size)
            y0 = np.clip(np.floor(y + 0.5).astype(int) - size // 2, 0, side - size)

            def floor():
                out = np.empty((n, size, size), dtype=np.float32)
                for k, (a, b) in enumerate(zip(y0.tolist(), x0.tolist())):
                    out[k] = data[a:a + size, b:b + size]
                return out

            def window():
                view = np.lib.stride_tricks.sliding_window_view(data, (size, size))
                return view[y0, x0].astype(np.float32)

            def ours():
                return make_cutouts(path, table, size=size)

            def ours_wcs():
                stack = make_cutouts(path, table, size=size)
                return stack, list(stack.wcs)

            m = args.cutout2d_n or n

            def astropy_loop():
                out = np.empty((m, size, size), dtype=np.float32)
                for k in range(m):
                    try:
                        c = Cutout2D(data, (x[k], y[k]), size, wcs=wcs, mode="partial",
                                     fill_value=np.nan)
                    except NoOverlapError:
                        out[k] = np.nan
                        continue
                    out[k] = c.data
                return out

            rows = []
            t_floor, ref = best_of(floor, args.repeat)
            rows.append(("numpy floor (loop of slices)", t_floor))
            t, _ = best_of(window, args.repeat)
            rows.append(("numpy sliding_window_view", t))
            t, stack = best_of(ours, args.repeat)
            rows.append(("make_cutouts (lazy WCS)", t))
            t, _ = best_of(ours_wcs, 1)
            rows.append(("make_cutouts + all WCS built", t))
            t, c2d = best_of(astropy_loop, 1)
            rows.append((f"Cutout2D loop with WCS{' (scaled)' if m < n else ''}", t * n / m))

            if args.bbox_n:
                k = args.bbox_n
                w, h = rng.integers(8, 121, k), rng.integers(8, 121, k)
                boxes = table[:k]
                boxes["bbox_xmin"] = np.floor(boxes["x"] - w / 2).astype(int)
                boxes["bbox_xmax"] = boxes["bbox_xmin"] + w - 1
                boxes["bbox_ymin"] = np.floor(boxes["y"] - h / 2).astype(int)
                boxes["bbox_ymax"] = boxes["bbox_ymin"] + h - 1
                t, _ = best_of(lambda: make_cutouts(path, boxes, size="bbox",
                                                    output_size=size), 1)
                rows.append(("make_cutouts size='bbox' (scaled)", t * n / k))

            inside = ~np.asarray(stack.table["edge"])
            assert np.array_equal(stack.data[inside], ref[inside])
            # Cutout2D centres an even-sized cutout on the position itself, we put the
            # pixel holding it at size // 2: they agree when both fractions are >= 0.5
            same = ((x[:m] % 1 >= 0.5) & (y[:m] % 1 >= 0.5))
            assert np.array_equal(stack.data[:m][same], c2d[same], equal_nan=True)

    print(f"\n{n} cutouts of {size}x{size} from a memory-mapped {side}x{side} float32 FITS "
          f"({int(np.sum(~inside))} at the edge)\n")
    print(f"{'method':34s} {'time (s)':>9s} {'us/cutout':>10s} {'x floor':>8s}")
    print("-" * 64)
    for name, t in rows:
        print(f"{name:34s} {t:9.3f} {t / n * 1e6:10.1f} {t / t_floor:8.2f}")


if __name__ == "__main__":
    main()
