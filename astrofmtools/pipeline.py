# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The whole analytic chain in one call: image to catalogue, cutouts and regions."""

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .utils import check_output_path

__all__ = ["PipelineResult", "run_pipeline"]


@dataclass
class PipelineResult:
    """
    What `run_pipeline` made.

    Attributes
    ----------
    sources : `~astropy.table.QTable`
        The source catalogue.
    cutouts : `~astrofmtools.cutouts.CutoutStack`
        Cutouts of every source.
    paths : dict
        Output name -> path of each file written.
    timings : dict
        Stage -> wall time in seconds.
    summary : str
        A short text report (also written to ``summary.txt``).
    """

    sources: object
    cutouts: object
    paths: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    summary: str = ""


def run_pipeline(image, output_dir, snr=5.0, cutout_size=64, overwrite=False):
    """
    Run background, source finding, cutouts and region export on one image.

    Everything is written into ``output_dir``: ``background.fits`` (the
    background and RMS maps), ``sources.ecsv``, ``sources.reg`` (DS9),
    ``sources.crtf`` (CASA/CARTA), ``cutouts.fits``, ``overlay.png`` and
    ``summary.txt``. The folder appears only when everything succeeded.

    Parameters
    ----------
    image : str or any input of `~astrofmtools.io.load_image`
        The FITS image.
    output_dir : str or `~pathlib.Path`
        The output folder; refused if it exists unless ``overwrite``.
    snr : float, optional
        Detection threshold in matched-filtered noise units.
    cutout_size : int, optional
        Side of the cutouts in pixels.
    overwrite : bool, optional
        Replace an existing ``output_dir``.

    Returns
    -------
    result : `PipelineResult`

    Examples
    --------
    >>> from astrofmtools.datasets import example_image_path
    >>> from astrofmtools.pipeline import run_pipeline
    >>> result = run_pipeline(example_image_path(), "demo_out")
    >>> sorted(result.paths)  # doctest: +NORMALIZE_WHITESPACE
    ['background', 'crtf', 'cutouts', 'overlay', 'regions', 'sources', 'summary']
    """
    from .background import estimate_background
    from .catalog import write_regions, write_table
    from .cutouts import make_cutouts
    from .io import load_image
    from .sources import find_sources
    from .visualization import plot_sources

    output_dir = check_output_path(output_dir, overwrite, kind="folder")
    parent = output_dir.parent if str(output_dir.parent) else Path(".")
    timings = {}
    work = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=parent))
    try:
        t = time.perf_counter()
        image = load_image(image)
        timings["load"] = time.perf_counter() - t

        t = time.perf_counter()
        background = estimate_background(image)
        background.write(work / "background.fits")
        timings["background"] = time.perf_counter() - t

        t = time.perf_counter()
        sources = find_sources(image, snr=snr, background=background)
        write_table(sources, work / "sources.ecsv")
        timings["sources"] = time.perf_counter() - t

        t = time.perf_counter()
        cutouts = make_cutouts(image, sources, size=cutout_size)
        cutouts.write(work / "cutouts.fits")
        timings["cutouts"] = time.perf_counter() - t

        t = time.perf_counter()
        if len(sources):
            write_regions(sources, work / "sources.reg", format="ds9", shape="ellipse",
                          wcs=image.wcs)
            write_regions(sources, work / "sources.crtf", format="crtf", shape="ellipse",
                          wcs=image.wcs)
        else:  # an empty region file is still a valid one
            (work / "sources.reg").write_text("# Region file format: DS9\n")
            (work / "sources.crtf").write_text("#CRTFv0\n")
        plot_sources(image, sources, path=work / "overlay.png", label="id")
        timings["regions+overlay"] = time.perf_counter() - t

        names = {"background": "background.fits", "sources": "sources.ecsv",
                 "regions": "sources.reg", "crtf": "sources.crtf", "cutouts": "cutouts.fits",
                 "overlay": "overlay.png", "summary": "summary.txt"}
        summary = _summary(image, background, sources, cutouts, timings, output_dir, names)
        (work / "summary.txt").write_text(summary + "\n")
        if output_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.old.", dir=parent))
            os.replace(output_dir, old / "previous")
            os.replace(work, output_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, output_dir)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    paths = {key: output_dir / name for key, name in names.items()}
    return PipelineResult(sources, cutouts, paths, timings, summary)


def _summary(image, background, sources, cutouts, timings, output_dir, names):
    import astropy.units as u
    lines = [f"astrofm pipeline on {image.source}",
             f"  image: {image.shape[1]} x {image.shape[0]} pixels"
             + (f", {image.pixel_scale.to_value(u.arcsec):.3g}\"/pixel" if image.has_wcs else "")
             + (f", beam {image.beam.major.to_value(u.arcsec):.3g}\"" if image.beam else ""),
             f"  noise (median RMS): {background.rms_median:.4g}"
             + (f" {image.unit}" if image.unit is not None else ""),
             f"  sources: {len(sources)} at snr >= {sources.meta.get('snr', '?')}",
             f"  cutouts: {len(cutouts)} of {cutouts.data.shape[-1]} x {cutouts.data.shape[-2]}"
             " pixels",
             "  time per stage:"]
    lines += [f"    {stage:<16s} {seconds:7.2f} s" for stage, seconds in timings.items()]
    lines.append(f"  outputs in {output_dir}/:")
    lines += [f"    {name}" for name in names.values()]
    return "\n".join(lines)
