# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
How the cost of the tiled stages grows with mosaic size and workers: time and
peak memory of ``astrofm sources`` (and ``astrofm detect``) against mosaic side,
serially and on a local Dask cluster, with the extrapolation to a survey.

Run by hand (never in CI)::

    python benchmarks/scaling.py                                  # 2k, 4k, 8k, 16k; 1 and 2 workers
    python benchmarks/scaling.py --sides 2048 4096 --workers 1 2 4 --detect-sides 2048 4096
    python benchmarks/scaling.py --workdir /scratch/scaling       # keep the mosaics for reruns

Each mosaic is a synthetic radio field (compact sources and FRI/FRII-like
galaxies in beam-correlated noise, a TAN WCS, FIRST's 5.4" beam at
1.8"/pixel) written stripe by stripe with ``benchmarks/detect_mosaic_memory.py``,
so the whole image is never in memory here. Every measurement is a fresh
``astrofm`` process run under GNU ``/usr/bin/time``: wall time, and the peak
resident set size of the largest process (the command or one of its Dask
workers). The tables written with several workers are compared with the
serial one row by row: they must be identical.

The detector has a random backbone trained for one epoch (memory and time
only; its detections mean nothing).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detect_mosaic_memory import run_child, write_mosaic  # noqa: E402

#: Survey extrapolated to: square degrees and pixel scale (arcsec).
SURVEY_DEG2, SURVEY_PIXEL = 1000.0, 1.8


def timed(cmd):
    """Run a command under GNU time: (wall seconds, peak RSS in GB of its largest process)."""
    done = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M", *cmd], capture_output=True,
                          text=True)
    if done.returncode:
        print(done.stdout, done.stderr, sep="\n")
        raise SystemExit(f"{' '.join(cmd)} failed (exit {done.returncode})")
    line = [ln for ln in done.stderr.splitlines() if ln.startswith("TIME ")][-1]
    _, seconds, kb = line.split()
    return float(seconds), int(kb) / 1024 ** 2


def scheduler_options(workers):
    return [] if workers == 1 else ["--workers", str(workers)]


def same_tables(a, b):
    from astropy.table import QTable
    ta, tb = QTable.read(a), QTable.read(b)
    if len(ta) != len(tb) or ta.colnames != tb.colnames:
        return False
    columns = [c for c in ("x", "y", "flux", "snr", "score", "bbox_xmin", "bbox_ymax")
               if c in ta.colnames]
    return all(np.array_equal(np.asarray(getattr(ta[c], "value", ta[c])),
                              np.asarray(getattr(tb[c], "value", tb[c])), equal_nan=True)
               for c in columns)


def measure(stage, mosaic, work, side, workers, detector=None):
    out = work / f"{stage}_{side}_w{workers}.ecsv"
    cmd = ["astrofm", stage, str(mosaic), "-o", str(out), "--overwrite", "-q",
           *scheduler_options(workers)]
    if stage == "detect":  # a low threshold: the random detector's boxes are still compared
        cmd += ["--model", str(detector), "--device", "cpu", "--score-threshold", "0.05"]
    seconds, rss = timed(cmd)
    from astropy.table import QTable
    return {"stage": stage, "side": side, "mpix": side * side / 1e6, "workers": workers,
            "seconds": seconds, "peak_rss_gb": rss, "n": len(QTable.read(out)),
            "table": str(out)}


def slope(rows):
    """The exponent of time against area (log-log least squares) and the time per Mpix."""
    if len(rows) < 2:
        return np.nan, rows[0]["seconds"] / rows[0]["mpix"] if rows else np.nan
    area = np.log([r["mpix"] for r in rows])
    t = np.log([r["seconds"] for r in rows])
    k, _ = np.polyfit(area, t, 1)
    big = max(rows, key=lambda r: r["mpix"])
    return k, big["seconds"] / big["mpix"]


def report(rows):
    print(f"\n{'stage':>8s}{'side':>7s}{'Mpix':>8s}{'workers':>9s}{'time s':>9s}"
          f"{'s/Mpix':>8s}{'peak RSS GB':>13s}{'N':>8s}{'= serial':>10s}")
    for r in rows:
        print(f"{r['stage']:>8s}{r['side']:7d}{r['mpix']:8.1f}{r['workers']:9d}"
              f"{r['seconds']:9.1f}{r['seconds'] / r['mpix']:8.2f}{r['peak_rss_gb']:13.2f}"
              f"{r['n']:8d}{str(r.get('same', '')):>10s}")
    survey_mpix = SURVEY_DEG2 * (3600.0 / SURVEY_PIXEL) ** 2 / 1e6
    print(f"\nGrowth of time with area (t ~ area^k) and a {SURVEY_DEG2:g} deg^2 survey at "
          f"{SURVEY_PIXEL:g}\"/px ({survey_mpix:,.0f} Mpix), from the largest mosaic's rate:")
    for stage in sorted({r["stage"] for r in rows}):
        serial = [r for r in rows if r["stage"] == stage and r["workers"] == 1]
        for workers in sorted({r["workers"] for r in rows if r["stage"] == stage}):
            these = [r for r in rows if r["stage"] == stage and r["workers"] == workers]
            k, rate = slope(these)
            speedup = ""
            both = {r["side"]: r for r in serial}
            paired = [(both[r["side"]]["seconds"], r["seconds"]) for r in these
                      if r["side"] in both]
            if workers > 1 and paired:
                s, w = max(paired)
                speedup = f", speed-up {s / w:.2f}x at the largest side"
            hours = rate * survey_mpix / 3600
            when = f"{hours:,.1f} h" if hours >= 1 else f"{hours * 60:,.1f} min"
            print(f"  {stage:>7s}, {workers} worker(s): k = {k:.2f}, {rate:.3f} s/Mpix -> "
                  f"{when} on this machine{speedup}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sides", type=int, nargs="+", default=[2048, 4096, 8192, 16384])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--detect-sides", type=int, nargs="*", default=[2048, 4096],
                        help="sides for astrofm detect (slow on a CPU; none to skip)")
    parser.add_argument("--model", default="resnet18", help="detector backbone (random)")
    parser.add_argument("--density", type=float, default=161.0,
                        help="compact sources per million pixels")
    parser.add_argument("--workdir", default=None,
                        help="keep mosaics and tables here (default: a temporary folder)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = []
        detector = None
        if args.detect_sides:
            detector = work / f"detector_{args.model}"
            if not detector.exists():
                run_child("--train", "--detector", str(detector), "--model", args.model,
                          "--zoom", "1", "--threads", "2")
        for side in sorted(set(args.sides) | set(args.detect_sides)):
            mosaic = work / f"mosaic_{side}.fits"
            if not mosaic.exists():
                t0 = time.perf_counter()
                write_mosaic(mosaic, side, 1024, args.density, 0)
                print(f"wrote {mosaic.name} ({mosaic.stat().st_size / 1024 ** 2:.0f} MiB) in "
                      f"{time.perf_counter() - t0:.0f} s", flush=True)
            stages = (["sources"] if side in args.sides else []) + \
                (["detect"] if side in args.detect_sides else [])
            for stage in stages:
                for workers in args.workers:
                    row = measure(stage, mosaic, work, side, workers, detector)
                    if workers > 1:
                        serial = next((r for r in rows if r["stage"] == stage
                                       and r["side"] == side and r["workers"] == 1), None)
                        row["same"] = serial is not None and same_tables(serial["table"],
                                                                         row["table"])
                    rows.append(row)
                    print(f"{stage} {side}^2, {workers} worker(s): {row['seconds']:.1f} s, "
                          f"peak RSS {row['peak_rss_gb']:.2f} GB, {row['n']} rows", flush=True)
        report(rows)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
