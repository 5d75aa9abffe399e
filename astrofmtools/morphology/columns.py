# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The columns of a morphology table: statmorph's names, units and descriptions."""

import astropy.units as u

from ..schema import register_column

__all__ = ["MORPHOLOGY_COLUMNS", "FLAG_FAILED", "FLAG_NO_SOURCE"]

#: ``flag`` of a cutout whose measurement failed: statmorph's own "catastrophic" flag,
#: also given when statmorph raised an error (the values are then NaN).
FLAG_FAILED = 4

#: ``flag`` (and ``flag_sersic``) of a cutout without a source: no segment near its
#: centre reaches the detection threshold (the values are NaN).
FLAG_NO_SOURCE = 5

_PIX = u.pix
_LENGTH = "(pixels of the cutout)"

#: The columns `measure_morphology` adds, in order: name -> (statmorph attribute,
#: unit, description); ``segment_area`` is not statmorph's. Lengths are in cutout
#: pixels; angles in degrees from +x, counter-clockwise; the rest have no unit.
MORPHOLOGY_COLUMNS = {
    "xc_centroid": ("xc_centroid", _PIX, "Centroid x of the source's segment (0-based cutout "
                    "pixel)"),
    "yc_centroid": ("yc_centroid", _PIX, "Centroid y of the source's segment (0-based cutout "
                    "pixel)"),
    "concentration": ("concentration", None, "Concentration C = 5 log10(r80 / r20) (Conselice "
                      "2003; Lotz et al. 2004)"),
    "asymmetry": ("asymmetry", None, "Rotational (180 deg) asymmetry A, background-corrected "
                  "(Conselice 2000); 0 for a symmetric source"),
    "smoothness": ("smoothness", None, "Smoothness (clumpiness) S, as Lotz et al. 2004 eq. 11"),
    "gini": ("gini", None, "Gini coefficient of the pixel fluxes in the Petrosian segmap "
             "(Lotz et al. 2004): 0 even, 1 all light in one pixel"),
    "m20": ("m20", None, "M20: log10 of the second moment of the brightest 20% of the light "
            "over the total (Lotz et al. 2004)"),
    "gini_m20_bulge": ("gini_m20_bulge", None, "Gini-M20 bulge statistic F(G, M20) "
                       "(Rodriguez-Gomez et al. 2019); > 0 bulge-dominated"),
    "gini_m20_merger": ("gini_m20_merger", None, "Gini-M20 merger statistic S(G, M20) "
                        "(Rodriguez-Gomez et al. 2019); > 0 merger candidate"),
    "multimode": ("multimode", None, "Multimode statistic M (Freeman et al. 2013)"),
    "intensity": ("intensity", None, "Intensity statistic I (Freeman et al. 2013)"),
    "deviation": ("deviation", None, "Deviation statistic D (Freeman et al. 2013)"),
    "shape_asymmetry": ("shape_asymmetry", None, "Asymmetry of the binary segmap A_S "
                        "(Pawlik et al. 2016)"),
    "sersic_n": ("sersic_n", None, "Sersic index of the 2-D Sersic fit"),
    "sersic_rhalf": ("sersic_rhalf", _PIX, "Half-light semi-major axis of the Sersic fit "
                     + _LENGTH),
    "sersic_ellip": ("sersic_ellip", None, "Ellipticity 1 - b/a of the Sersic fit"),
    "sersic_theta": ("sersic_theta", u.deg, "Angle of the Sersic fit's major axis from +x, "
                     "counter-clockwise, in (-90, 90]"),
    "ellipticity_asymmetry": ("ellipticity_asymmetry", None, "Ellipticity 1 - b/a from the "
                              "second moments about the point of least asymmetry"),
    "ellipticity_centroid": ("ellipticity_centroid", None, "Ellipticity 1 - b/a from the "
                             "second moments about the centroid"),
    "orientation_asymmetry": ("orientation_asymmetry", u.deg, "Angle of the major axis (second "
                              "moments about the point of least asymmetry) from +x, "
                              "counter-clockwise, in (-90, 90]"),
    "r20": ("r20", _PIX, "Radius of the circle holding 20% of the light " + _LENGTH),
    "r50": ("r50", _PIX, "Radius of the circle holding 50% of the light " + _LENGTH),
    "r80": ("r80", _PIX, "Radius of the circle holding 80% of the light " + _LENGTH),
    "rpetro_circ": ("rpetro_circ", _PIX, "Circular Petrosian radius (eta = 0.2) " + _LENGTH),
    "rhalf_circ": ("rhalf_circ", _PIX, "Circular half-light radius (non-parametric) "
                   + _LENGTH),
    "sn_per_pixel": ("sn_per_pixel", None, "Mean signal-to-noise ratio per pixel in the "
                     "Gini segmap"),
    "segment_area": (None, _PIX ** 2, "Number of pixels in the source's segment"),
    "flag": ("flag", None, f"statmorph's quality flag: 0 good, 1 suspect, 2 bad, "
             f"{FLAG_FAILED} failed, {FLAG_NO_SOURCE} no source"),
    "flag_sersic": ("flag_sersic", None, f"Quality flag of the Sersic fit: 0 good, 1 suspect, "
                    f"2 bad, {FLAG_FAILED} failed, {FLAG_NO_SOURCE} no source"),
}

# the schema knows what these names mean in any table; ``flag`` means something else
# elsewhere, so it keeps its description here only
for _name, (_attr, _unit, _description) in MORPHOLOGY_COLUMNS.items():
    if _name != "flag":
        register_column(_name, _unit, _description)
del _name, _attr, _unit, _description
