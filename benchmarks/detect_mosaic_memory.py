# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Peak memory and speed of tiled detection (`Detector.predict`) on a large
mosaic read from a FITS file.

Run by hand (never in CI)::

    python benchmarks/detect_mosaic_memory.py              # 8192 x 8192, resnet18
    python benchmarks/detect_mosaic_memory.py --size 4096 --model resnet50 --threads 8

The mosaic is written to a FITS file first, one stripe of rows at a time
(each stripe a `~astrofmtools.datasets.make_radio_field` of its own, so the
whole image is never in memory here), with a TAN WCS and a beam. A detector
with a randomly initialised backbone is trained for one epoch on a small
synthetic field and saved, in a child process: its detections are
meaningless, but its memory and time are those of a trained one. Detection
then runs in a second child process (``Detector.load`` +
``Detector.predict(path)``), so that its peak resident set size is that of
detection alone. It must stay below 3 GB.

The peak is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the detection
process. On Linux that figure also holds the peak of the process it was
started from (the kernel carries it over ``exec``), so the parent here never
imports torch; ``VmHWM`` from ``/proc/self/status``, the high-water mark of
the process's own memory, is printed beside it. Both include the pages of
the FITS file read through a memory map and the shared libraries.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LIMIT_GB = 3.0


def peak_rss_gb():
    """Peak resident set size of this process so far (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def status_gb():
    """Current resident memory (anonymous and file-backed), from /proc (Linux only)."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024 ** 2
    except OSError:
        pass
    return out


def write_mosaic(path, size, stripe, density, seed):
    """Write a size x size radio mosaic, stripe by stripe; return the compact-source count."""
    from astropy.io import fits
    import astropy.units as u

    from astrofmtools.datasets import make_radio_field, make_wcs

    wcs = make_wcs((size, size))
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = size
    header["NAXIS2"] = size
    header.update(wcs.to_header())
    header["BUNIT"] = "JY/BEAM"
    header["BMAJ"] = (5.4 * u.arcsec).to_value(u.deg)
    header["BMIN"] = header["BMAJ"]
    header["BPA"] = 0.0
    out = fits.StreamingHDU(path, header)
    n_sources = 0
    for k, y0 in enumerate(range(0, size, stripe)):
        rows = min(stripe, size - y0)
        n = int(round(density * rows * size / 1e6))
        image, truth = make_radio_field(shape=(rows, size), n_compact=n,
                                        n_extended=max(1, n // 9), n_artefacts=0,
                                        seed=[seed, k])
        out.write(image.data.astype(">f4"))
        n_sources += len(truth)
        del image, truth
    out.close()
    return n_sources


def train_detector(folder, model, zoom, threads):
    """A one-epoch detector with a random backbone, saved to ``folder`` (child process)."""
    import torch

    from astrofmtools.datasets import make_radio_field
    from astrofmtools.detect import Detector

    torch.set_num_threads(threads)
    image, truth = make_radio_field(shape=(256, 256), n_compact=30, n_extended=3,
                                    n_artefacts=0, snr_range=(10, 300), seed=0)
    det = Detector(model, weights="random", epochs=1, crop_size=256, batch_size=2,
                   zoom=zoom if zoom == "auto" else float(zoom), device="cpu")
    det.fit([image], [truth])
    det.save(folder, overwrite=True)
    print(json.dumps({"detector": repr(det)}))


def child(args):
    """Detection alone, in a fresh process: print a JSON line with the numbers."""
    import torch

    torch.set_num_threads(args.threads)
    from astrofmtools.detect import Detector

    before = peak_rss_gb()
    det = Detector.load(args.detector, device="cpu")
    loaded = peak_rss_gb()
    t0 = time.perf_counter()
    table = det.predict(args.mosaic, tile=args.tile, overlap=args.overlap,
                        batch_size=args.batch_size, score_threshold=args.score_threshold)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "n_detections": len(table),
                      "n_tiles": table.meta["n_tiles"], "zoom": det.preprocess_.zoom,
                      "peak_rss_gb": peak_rss_gb(), "rss_before_gb": before,
                      "rss_model_loaded_gb": loaded, "status": status_gb()}))


def run_child(*options):
    """Run this script with ``options`` in a fresh process; its last line as JSON."""
    cmd = [sys.executable, os.path.abspath(__file__), *options]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        print(done.stdout, done.stderr, sep="\n")
        raise SystemExit(f"{options[0]} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8192, help="mosaic side in pixels")
    parser.add_argument("--tile", type=int, default=512, help="tile side (image pixels)")
    parser.add_argument("--overlap", type=int, default=64, help="tile overlap (pixels)")
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    parser.add_argument("--model", default="resnet18", help="registry backbone")
    parser.add_argument("--zoom", default="auto", help="model pixels per image pixel")
    parser.add_argument("--score-threshold", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--stripe", type=int, default=1024, help="rows written at a time")
    parser.add_argument("--density", type=float, default=161.0,
                        help="compact sources per million pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", help="folder for the mosaic and the detector "
                        "(default: a temporary folder, removed afterwards)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--train", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mosaic", help=argparse.SUPPRESS)
    parser.add_argument("--detector", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return
    if args.train:
        train_detector(args.detector, args.model, args.zoom, args.threads)
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        mosaic = work / f"mosaic_{args.size}.fits"
        t0 = time.perf_counter()
        if mosaic.exists():
            print(f"using the existing {mosaic}")
        else:
            n = write_mosaic(mosaic, args.size, args.stripe, args.density, args.seed)
            print(f"wrote {mosaic} ({mosaic.stat().st_size / 1024 ** 2:.0f} MiB, {n} sources) "
                  f"in {time.perf_counter() - t0:.1f} s; peak RSS while writing "
                  f"{peak_rss_gb():.2f} GB")
        folder = work / f"detector_{args.model}_zoom_{args.zoom}"
        t0 = time.perf_counter()
        trained = run_child("--train", "--detector", str(folder), "--model", args.model,
                            "--zoom", str(args.zoom), "--threads", str(args.threads))
        print(f"trained {trained['detector']} for one epoch in {time.perf_counter() - t0:.1f} s "
              "(random backbone; memory and time only)")
        print(f"this process (no torch): peak RSS {peak_rss_gb():.2f} GB")
        result = run_child("--child", "--mosaic", str(mosaic), "--detector", str(folder),
                           "--tile", str(args.tile), "--overlap", str(args.overlap),
                           "--batch-size", str(args.batch_size), "--threads",
                           str(args.threads), "--score-threshold",
                           str(args.score_threshold))

    mpix = args.size ** 2 / 1e6
    status = result["status"]
    peak = max(result["peak_rss_gb"], status.get("VmHWM", 0.0))
    print()
    print(f"tiled detection of a {args.size}x{args.size} mosaic ({mpix:.1f} Mpix) from a FITS "
          f"file, {args.model}, zoom {result['zoom']:g}, tile {args.tile}, "
          f"overlap {args.overlap}, batch {args.batch_size}, {args.threads} CPU threads")
    print(f"  tiles              {result['n_tiles']}")
    print(f"  detections         {result['n_detections']}")
    print(f"  wall time          {result['seconds']:.1f} s = "
          f"{result['seconds'] / mpix:.2f} s per Mpix "
          f"({result['seconds'] / result['n_tiles']:.2f} s per tile)")
    print(f"  RSS, torch + model {result['rss_model_loaded_gb']:.2f} GB (before detection)")
    print(f"  peak RSS           {result['peak_rss_gb']:.2f} GB (getrusage), "
          f"{status.get('VmHWM', np.nan):.2f} GB (VmHWM); limit {LIMIT_GB:g} GB: "
          f"{'OK' if peak < LIMIT_GB else 'TOO HIGH'}")
    if status:
        print(f"  at the end         RSS {status.get('VmRSS', np.nan):.2f} GB = anonymous "
              f"{status.get('RssAnon', np.nan):.2f} + file-backed "
              f"{status.get('RssFile', np.nan):.2f} GB")
    if peak >= LIMIT_GB:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
