# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The whole chain in one call: image to catalogue, cutouts, features, classes and regions."""

import contextlib
import logging
import time
from dataclasses import dataclass, field
from importlib.util import find_spec

from .utils import atomic_folder, atomic_output, check_output_path, weights_note

__all__ = ["PipelineResult", "run_pipeline"]

log = logging.getLogger("astrofmtools")


@contextlib.contextmanager
def _stage(timings, name):
    """Say that a stage starts (so a piped run is never silent) and record how long it took."""
    log.info("%s ...", name)
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start


@dataclass
class PipelineResult:
    """
    What `run_pipeline` made.

    Attributes
    ----------
    sources : `~astropy.table.QTable`
        The source catalogue (with the predicted class of each source when
        the pipeline classified them).
    cutouts : `~astrofmtools.cutouts.CutoutStack`
        Cutouts of every source.
    features : `~astrofmtools.embed.Embedding` or None
        The sources' feature vectors (None when the ``ml`` stages were off).
    paths : dict
        Output name -> path of each file written.
    timings : dict
        Stage -> wall time in seconds.
    summary : str
        A short text report (also written to ``summary.txt``).
    """

    sources: object
    cutouts: object
    features: object = None
    paths: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    summary: str = ""


def run_pipeline(image, output_dir, snr=5.0, cutout_size=64, model="efficientnet_lite0",
                 weights=None, ml=None, seed=0, device=None, batch_size=64, overwrite=False):
    """
    Run the whole chain on one image: background, sources, cutouts, features,
    classes, a map of the features, regions and pictures.

    Everything is written into ``output_dir``: ``background.fits`` (the
    background and RMS maps), ``sources.ecsv`` (the catalogue, with the
    predicted class of each source), ``sources.reg`` (DS9),
    ``sources.crtf`` (CASA/CARTA), ``cutouts.fits``, ``features.fits``,
    ``overlay.png`` (the image with the sources and their classes),
    ``feature_map.png`` and ``summary.txt``. The folder appears only when
    everything succeeded.

    With ``ml=True`` (the ``ml`` extra), the sources are embedded with
    ``model`` and classified as compact or extended by a linear head on
    the same features, trained on the fly on labelled synthetic radio
    cutouts drawn like the image: its beam (header), pixel scale (WCS) and
    noise (`~astrofmtools.background.global_noise`)
    (`~astrofmtools.datasets.make_radio_cutouts`; seconds, no download).
    The model sees the central ``DEMO_CROP_BEAMS`` beams of each cutout.
    ``p_compact`` and ``p_extended`` are saved and printed per source next
    to a physical check: a Gaussian fitted to each source, its major axis
    deconvolved from the beam (``fit_fwhm_major``, ``fit_fwhm_minor``,
    ``deconvolved_major``, ``size_class``: compact when the deconvolved
    major axis is under half the beam or the fitted one within 3 sigma of
    the beam, sigma = fitted FWHM / SNR after Condon 1997). A quarter of
    the synthetic cutouts calibrate conformal prediction sets
    (``prediction_set``, ``set_size``: both classes where the head cannot
    decide at 90 % coverage), and ``ood_score``/``ood_flag`` mark the
    sources unlike every synthetic cutout (`~astrofmtools.trust`). The
    feature map is a PCA + UMAP of the synthetic training set coloured by
    class, with the image's sources placed in it.

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
    model : str, optional
        The backbone (`~astrofmtools.backbones.list_backbones`); the default
        needs no download.
    weights : str, optional
        The backbone's weights file (default: the registry's source).
    ml : bool or None, optional
        Run the foundation-model stages (features, classes, map). None:
        when the ``ml`` extra is installed (the summary says when not).
    seed : int, optional
        Seed of the synthetic training set, the head and the map.
    device : str, optional
        Torch device (default: `~astrofmtools.backbones.default_device`).
    batch_size : int, optional
        Cutouts per forward pass.
    overwrite : bool, optional
        Replace an existing ``output_dir``.

    Returns
    -------
    result : `PipelineResult`

    Examples
    --------
    >>> from astrofmtools.datasets import example_image_path
    >>> from astrofmtools.pipeline import run_pipeline
    >>> result = run_pipeline(example_image_path(), "demo_out", ml=False)
    >>> sorted(result.paths)  # doctest: +NORMALIZE_WHITESPACE
    ['background', 'crtf', 'cutouts', 'overlay', 'regions', 'sources', 'summary']
    """
    from .background import estimate_background
    from .catalog import write_regions, write_table
    from .cutouts import make_cutouts
    from .io import load_image
    from .sources import find_sources
    from .visualization import plot_sources

    output_dir = check_output_path(output_dir, overwrite, kind="folder")  # before any work
    timings = {}
    notes = []
    if ml is None:
        missing = [m for m in ("torch", "timm", "sklearn", "umap") if find_spec(m) is None]
        ml = not missing
        if missing:
            notes.append(f"  no features, classes or feature map: {', '.join(missing)} not "
                         "installed (pip install 'astrofmtools[ml]')")
    names = {"background": "background.fits", "sources": "sources.ecsv",
             "regions": "sources.reg", "crtf": "sources.crtf", "cutouts": "cutouts.fits"}
    if ml:
        names.update({"features": "features.fits", "feature_map": "feature_map.png"})
    names.update({"overlay": "overlay.png", "summary": "summary.txt"})
    embedding = None
    with atomic_folder(output_dir, overwrite=overwrite) as work:
        with _stage(timings, "load"):
            image = load_image(image)

        with _stage(timings, "background"):
            background = estimate_background(image)
            background.write(work / "background.fits")

        with _stage(timings, "sources"):
            sources = find_sources(image, snr=snr, background=background)

        with _stage(timings, "cutouts"):
            cutouts = make_cutouts(image, sources, size=cutout_size)
            cutouts.write(work / "cutouts.fits")

        if ml and len(sources):
            embedding, more = _ml_stages(image, sources, cutouts, work, timings, model=model,
                                         weights=weights, seed=seed, device=device,
                                         batch_size=batch_size,
                                         cutouts_path=output_dir.resolve() / "cutouts.fits")
            notes += more
        elif ml:
            names.pop("features")
            names.pop("feature_map")
        write_table(sources, work / "sources.ecsv")

        with _stage(timings, "regions+overlay"):
            if len(sources):
                write_regions(sources, work / "sources.reg", format="ds9", shape="ellipse",
                              wcs=image.wcs)
                write_regions(sources, work / "sources.crtf", format="crtf", shape="ellipse",
                              wcs=image.wcs)
            else:  # an empty region file is still a valid one
                (work / "sources.reg").write_text("# Region file format: DS9\n")
                (work / "sources.crtf").write_text("#CRTFv0\n")
            label = "id"
            if "label" in sources.colnames:
                sources["id_label"] = [f"{i}: {c}" for i, c in zip(sources["id"], sources["label"])]
                label = "id_label"
            fig = plot_sources(image, sources, label=label)
            ax = fig.axes[0]  # classes by an untrained model say so
            ax.set_title(weights_note(ax.get_title(), sources.meta.get("weights")), fontsize=9)
            with atomic_output(work / "overlay.png", overwrite=True) as tmp:
                fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
            if "id_label" in sources.colnames:
                del sources["id_label"]

        summary = _summary(image, background, sources, cutouts, timings, output_dir, names,
                           notes)
        (work / "summary.txt").write_text(summary + "\n")
    paths = {key: output_dir / name for key, name in names.items()}
    return PipelineResult(sources, cutouts, embedding, paths, timings, summary)


#: Classes of the head the pipeline trains on synthetic cutouts.
DEMO_CLASSES = ("compact", "extended")
#: Miscoverage of the demo's conformal prediction sets.
DEMO_ALPHA = 0.1
#: Side of the central crop the demo's model sees, in beams (FWHM): 4.5 beams (13.5 FIRST
#: pixels) show a source's shape; a wider view is mostly neighbours, which the head takes for
#: lobes (with 10 beams every source of the FIRST example was 'extended').
DEMO_CROP_BEAMS = 4.5
#: Synthetic cutouts of each class the demo's head is trained on.
DEMO_N_PER_CLASS = 200
#: The FIRST survey's beam and pixels (arcsec): the demo's defaults for an image without them.
_FIRST_BEAM = 5.4
_FIRST_PIXEL = 1.8


def _image_geometry(image):
    """(beam FWHM, pixel scale) in arcsec: the image's own, else FIRST's."""
    import astropy.units as u
    import numpy as np
    scale = image.pixel_scale.to_value(u.arcsec) if image.has_wcs else _FIRST_PIXEL
    beam = _FIRST_BEAM * scale / _FIRST_PIXEL  # 3 pixels without a beam in the header
    if image.beam is not None:  # make_radio_field draws circular beams: the mean axis
        beam = float(np.sqrt(image.beam.major.to_value(u.arcsec)
                             * image.beam.minor.to_value(u.arcsec)))
    return beam, scale


def _demo_training_set(image, size, seed):
    """Labelled synthetic cutouts with the image's beam, pixel scale and noise."""
    import astropy.units as u
    from .background import global_noise
    from .datasets import make_radio_cutouts
    beam, scale = _image_geometry(image)
    noise = float(global_noise(image).rms)
    if not noise > 0:
        noise = 1.5e-4
    train = make_radio_cutouts(n_per_class=DEMO_N_PER_CLASS, classes=DEMO_CLASSES, size=size,
                               pixel_scale=scale * u.arcsec, beam_fwhm=beam * u.arcsec,
                               noise=noise, seed=seed)
    train.table.meta.update(beam_fwhm_arcsec=beam, pixel_scale_arcsec=scale, noise=noise)
    return train


def _size_check(image, sources):
    """
    A Gaussian fitted to each source within a beam of its position, deconvolved from the beam.

    Adds ``fit_fwhm_major``, ``fit_fwhm_minor``, ``deconvolved_major`` (arcsec) and
    ``size_class`` ('compact' when the deconvolved major axis is under half the beam, or the
    fitted major axis within 3 sigma of the beam with sigma = fitted major / SNR, Condon 1997
    for a near-point source; else 'extended'; '' when the fit failed). Returns the beam.
    """
    import warnings
    import astropy.units as u
    import numpy as np
    from astropy.modeling import fitting, models
    beam, scale = _image_geometry(image)
    half = max(int(round(beam / scale)), 2)  # a box of +-1 beam: the core, not neighbours
    fwhm = 2.0 * np.sqrt(2.0 * np.log(2.0))
    ny, nx = image.shape[-2:]
    rows = []
    for source in sources:
        x, y = float(source["x"]), float(source["y"])
        xi, yi = int(round(x)), int(round(y))
        y0, y1 = max(yi - half, 0), min(yi + half + 1, ny)
        x0, x1 = max(xi - half, 0), min(xi + half + 1, nx)
        data = np.asarray(image.data[..., y0:y1, x0:x1], dtype=float).reshape(y1 - y0, x1 - x0)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        good = np.isfinite(data)
        out = (np.nan, np.nan)
        if good.sum() >= 7:
            sigma = beam / scale / fwhm
            guess = models.Gaussian2D(np.nanmax(data), x, y, sigma, sigma)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = fitting.LevMarLSQFitter()(guess, xx[good], yy[good], data[good])
            axes = np.sort(np.abs([fit.x_stddev.value, fit.y_stddev.value]))[::-1]
            if fit.amplitude.value > 0 and np.all(np.isfinite(axes)):
                out = tuple(axes * fwhm * scale)
        rows.append(out)
    major = np.array([r[0] for r in rows], dtype=float)
    minor = np.array([r[1] for r in rows], dtype=float)
    deconvolved = np.sqrt(np.clip(major ** 2 - beam ** 2, 0, None))
    snr = np.asarray(sources["snr"], dtype=float)
    compact = (deconvolved < 0.5 * beam) | (major - beam < 3 * major / snr)
    sources["fit_fwhm_major"] = major * u.arcsec
    sources["fit_fwhm_minor"] = minor * u.arcsec
    sources["deconvolved_major"] = np.where(np.isfinite(major), deconvolved, np.nan) * u.arcsec
    sources["size_class"] = np.where(np.isfinite(major),
                                     np.where(compact, "compact", "extended"), "")
    descriptions = {
        "fit_fwhm_major": "FWHM of the major axis of a Gaussian fitted within a beam",
        "fit_fwhm_minor": "FWHM of the minor axis of that Gaussian",
        "deconvolved_major": "fitted major axis deconvolved from the beam",
        "size_class": "compact: deconvolved major < beam / 2 or fitted major within 3 sigma "
                      "of the beam (sigma = major / snr); else extended",
    }
    for name, text in descriptions.items():
        sources[name].info.description = text
    return beam


def _label_lines(sources, beam):
    """The summary's table: each source's class, probabilities and the size check."""
    lines = [f"  labels and probabilities (head), and the size check against the "
             f"{beam:.3g}\" beam (Gaussian fit, deconvolved):",
             "      id  label      p_compact p_extended    snr  fit FWHM (\")  deconv (\")"
             "  by size"]
    for s in sources:
        lines.append(f"    {str(s['id']):>4s}  {s['label']:<9s}  {s['p_compact']:9.3f} "
                     f"{s['p_extended']:10.3f} {s['snr']:6.1f}  "
                     f"{s['fit_fwhm_major'].value:5.1f} x {s['fit_fwhm_minor'].value:4.1f}"
                     f"  {s['deconvolved_major'].value:10.1f}  {s['size_class']}")
    agree = int(sum(str(a) == str(b) for a, b in zip(sources["label"], sources["size_class"])))
    lines.append("    by size: compact when the deconvolved major axis is under half the beam, or "
                 "the fitted one within 3 sigma of the beam (sigma = fitted / snr)")
    lines.append(f"    the head and the size check agree on {agree} of {len(sources)} sources")
    return lines


def _ml_stages(image, sources, cutouts, work, timings, model, weights, seed, device,
               batch_size, cutouts_path=None):
    """Features, a compact/extended head trained on synthetic cutouts, and the feature map."""
    from .backbones import load_backbone
    from .classify import Classifier
    import numpy as np
    from .embed import embed

    size = cutouts.cutout_shape[0]
    with _stage(timings, "train head (synthetic)"):
        backbone = load_backbone(model, weights=weights, device=device)
        beam, scale = _image_geometry(image)
        crop = DEMO_CROP_BEAMS * beam / scale
        preprocess = backbone.default_preprocess(input_size=64, zoom=max(size / crop, 1.0))
        train = _demo_training_set(image, size, seed)
        # a quarter of the synthetic cutouts calibrate conformal sets, and the training features
        # tell which real sources look like none of them: a head trained on a simulation must
        # say where it is unsure, and where it is out of its depth
        clf = Classifier(backbone, head="linear", strategy="frozen", preprocess=preprocess,
                         seed=seed, device=device, batch_size=batch_size,
                         calibration_fraction=0.25, ood="knn")
        clf.fit(train, train.table["class"])
        train_features = embed(train, model=backbone, preprocess=clf.preprocess_, device=device,
                               batch_size=batch_size)  # read from the cache fit just filled

    with _stage(timings, "features+classes"):
        embedding = embed(cutouts, model=backbone, preprocess=clf.preprocess_, device=device,
                          batch_size=batch_size)
        predicted = clf.predict(cutouts, batch_size=batch_size, conformal=DEMO_ALPHA)
        for name in (["label", "probability"] + [f"p_{c}" for c in clf.classes_]
                     + ["prediction_set", "set_size", "ood_score", "ood_flag"]):
            sources[name] = predicted[name]
        sources.meta["backbone"], sources.meta["weights"] = backbone.spec.name, backbone.weights
        embedding.table = sources.copy()
        embedding.meta["preprocess"] = clf.preprocess_.to_dict()
        embedding.meta["cutouts"] = str(cutouts_path)  # 'astrofm similar' finds them there
        embedding.write(work / "features.fits")

    with _stage(timings, "feature map"):
        _feature_map(train_features, embedding, work / "feature_map.png", seed)
    meta = train.table.meta
    notes = [f"  classes: {', '.join(DEMO_CLASSES)} from a linear head on "
             f"{backbone.spec.name} features, trained on {len(train)} synthetic cutouts "
             f"drawn with this image's beam ({meta['beam_fwhm_arcsec']:.3g}\"), pixels "
             f"({meta['pixel_scale_arcsec']:.3g}\") and noise ({meta['noise']:.3g}); the model "
             f"sees the central {DEMO_CROP_BEAMS:.3g} beams of each cutout"]
    if backbone.weights == "random":
        notes.append("  random weights: not a trained model, so the classes mean nothing")
    notes += _label_lines(sources, _size_check(image, sources))
    notes += [
             f"  conformal sets (coverage {1 - DEMO_ALPHA:g} on the simulation): "
             f"{int(np.sum(predicted['set_size'] > 1))} of {len(predicted)} sources hold "
             f"both classes; {int(np.sum(predicted['ood_flag']))} look unlike every "
             "synthetic cutout (ood_flag)"]
    return embedding, notes


def _summary(image, background, sources, cutouts, timings, output_dir, names, notes=()):
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
             *notes,
             "  time per stage:"]
    lines += [f"    {stage:<24s} {seconds:7.2f} s" for stage, seconds in timings.items()]
    lines.append(f"  outputs in {output_dir}/:")
    lines += [f"    {name}" for name in names.values()]
    return "\n".join(lines)


def _feature_map(train, embedding, path, seed):
    """PCA + UMAP fitted on the labelled synthetic set; the image's sources placed in it."""
    from matplotlib.figure import Figure
    from .embed import FeatureMap, plot_map, umap_map

    fitted = FeatureMap(n_components=10, n_neighbors=15, seed=seed).fit(train.features)
    reference = umap_map(train, color="class", fit_on=fitted)
    placed = umap_map(embedding, fit_on=fitted)
    fig = Figure(figsize=(6.4, 5.6), dpi=100)
    ax = fig.add_subplot()
    plot_map(reference, color="class", ax=ax,
             title=weights_note(f"{embedding.meta.get('backbone', '')} features: synthetic "
                                "training set and this image's sources",
                                embedding.meta.get("weights"), sep="\n"))
    ax.scatter(placed["map_x"], placed["map_y"], marker="*", s=160, c="black",
               edgecolors="white", linewidths=0.6, label=f"this image ({len(placed)})", zorder=5)
    for x, y, i in zip(placed["map_x"], placed["map_y"], placed["id"]):
        ax.annotate(str(i), (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8,
                    zorder=6)
    classes = ax.get_legend()
    ax.legend(loc="lower left", fontsize=8)
    if classes is not None:
        ax.add_artist(classes)  # keep the class legend of plot_map next to the new one
    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png")
    return placed
