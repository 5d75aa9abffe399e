# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Deep ensembles: several classifiers of the same classes, their disagreement as uncertainty."""

import json
from pathlib import Path

import numpy as np

from ..exceptions import InputError

__all__ = ["Ensemble"]

_FILE = "ensemble.json"


class Ensemble:
    """
    A deep ensemble: the mean of several classifiers' probabilities, and their spread.

    Members trained with different seeds (initialisation, splits, batches)
    disagree where the data do not decide: the mutual information of their
    predictions measures that doubt (Lakshminarayanan et al. 2017).

    Parameters
    ----------
    classifiers : list of `Classifier`
        Fitted classifiers with the same classes.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.backbones import BackboneSpec
    >>> from astrofmtools.classify import Ensemble
    >>> spec = BackboneSpec(name="vit_ens_doc", timm_name="vit_tiny_patch16_224", patch_size=8,
    ...                     input_size=32, feature_dim=32, licence="none",
    ...                     timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 1,
    ...                                  "embed_dim": 32, "num_heads": 2})
    >>> rng = np.random.default_rng(0)
    >>> images = rng.normal(size=(40, 16, 16)) + np.arange(40)[:, None, None] % 2
    >>> labels = np.where(np.arange(40) % 2, "bright", "faint")
    >>> ens = Ensemble.fit_seeds(3, images, labels, backbone=spec, weights="random",
    ...                          tta=False, device="cpu", cache=False)
    >>> table = ens.predict(images[:5])
    >>> [c for c in table.colnames if c in ("entropy", "mutual_info")]
    ['entropy', 'mutual_info']
    """

    def __init__(self, classifiers):
        classifiers = list(classifiers)
        if len(classifiers) < 2:
            raise InputError(f"An ensemble needs at least two classifiers; got "
                             f"{len(classifiers)}.")
        classes = [np.asarray(c.classes_).tolist() for c in classifiers]
        if any(c != classes[0] for c in classes):
            raise InputError(f"The ensemble's classifiers must share their classes; got "
                             f"{classes}.")
        self.classifiers = classifiers

    def __repr__(self):
        return f"<Ensemble of {len(self.classifiers)}: {self.classifiers[0]!r}>"

    @property
    def classes_(self):
        """The classes (those of every member)."""
        return self.classifiers[0].classes_

    @classmethod
    def fit_seeds(cls, n, cutouts, labels, seeds=None, **classifier_kwargs):
        """
        Train ``n`` classifiers that differ only by their seed.

        Parameters
        ----------
        n : int
            Members (at least 2).
        cutouts, labels
            As for `Classifier.fit`.
        seeds : list of int, optional
            Their seeds (default ``0 .. n - 1``).
        **classifier_kwargs
            `Classifier` arguments (``backbone``, ``head``, ``strategy``...).

        Returns
        -------
        ensemble : `Ensemble`
        """
        from .classifier import Classifier
        seeds = list(range(int(n))) if seeds is None else [int(s) for s in seeds]
        if len(seeds) != int(n):
            raise InputError(f"seeds must give one seed per member ({n}); got {len(seeds)}.")
        classifier_kwargs.pop("seed", None)
        return cls([Classifier(seed=s, **classifier_kwargs).fit(cutouts, labels)
                    for s in seeds])

    def member_probabilities(self, cutouts, batch_size=64):
        """``(S, N, K)`` class probabilities of each member."""
        return np.stack([c.predict_proba(cutouts, batch_size) for c in self.classifiers])

    def predict_proba(self, cutouts, batch_size=64):
        """``(N, K)`` mean class probabilities of the members."""
        return self.member_probabilities(cutouts, batch_size).mean(axis=0)

    def predict(self, cutouts, batch_size=64):
        """
        Classify cutouts with the ensemble's mean probabilities.

        Returns
        -------
        table : `~astropy.table.QTable`
            As `Classifier.predict` (``label``, ``probability``,
            ``p_<class>`` from the mean), then ``entropy``, ``mutual_info``
            and ``std_<class>`` over the members
            (`~astrofmtools.trust.uncertainty_columns`); ``meta["ensemble"]``
            is the number of members.
        """
        from ..trust import uncertainty_columns
        from .inputs import _as_inputs
        from .predicting import prediction_table
        inputs, table = _as_inputs(cutouts)
        samples = self.member_probabilities(inputs, batch_size)
        table = prediction_table(self.classifiers[0], table, samples.mean(axis=0))
        table.meta["ensemble"] = len(self.classifiers)
        return uncertainty_columns(table, samples, [str(c) for c in self.classes_])

    def save(self, path, overwrite=False):
        """Save every member in ``path/member_<i>`` and the list in ``ensemble.json``."""
        from ..utils import atomic_folder, check_output_path
        check_output_path(path, overwrite, kind="folder")
        with atomic_folder(path, overwrite=overwrite) as tmp:
            names = []
            for i, clf in enumerate(self.classifiers):
                clf.save(Path(tmp) / f"member_{i}")
                names.append(f"member_{i}")
            (Path(tmp) / _FILE).write_text(json.dumps({"format": "astrofmtools.Ensemble",
                                                       "members": names}))

    @classmethod
    def load(cls, path, device=None):
        """Load an ensemble saved by `save`."""
        from .classifier import Classifier
        path = Path(path)
        try:
            config = json.loads((path / _FILE).read_text())
        except FileNotFoundError:
            raise InputError(f"{str(path)!r} is not a saved ensemble (no {_FILE}).") from None
        return cls([Classifier.load(path / name, device=device) for name in config["members"]])
