# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The heads registry: `register_head` adds a head that `make_head`, saved
models (`head_from_config`) and the command line then know; the built-in
heads (linear, MLP, whitening, kNN, logistic) are registered here.
"""

from torch import nn

from ..exceptions import InputError
from ..utils.registry import Registry
from .head_fits import _fit_knn, _fit_logistic
from .head_modules import KNNHead, LinearHead, MLPHead, WhiteningHead

__all__ = ["HeadType", "register_head", "list_heads", "get_head", "make_head",
           "head_from_config"]


class HeadType:
    """
    A registered head: what it builds, its options and how it is fitted.

    Parameters
    ----------
    name : str
        The name users give (``Classifier(head=name)``, ``--head name``).
    cls : type
        The `torch.nn.Module` it builds, called as ``cls(in_features,
        n_classes, **options)``; its ``kind`` attribute names it in a saved
        model's config (`head_from_config`).
    options : dict, optional
        Its options and their defaults (e.g. ``{"hidden": (256,)}``).
    fit : callable, optional
        For heads fitted in closed form on frozen features:
        ``fit(features, labels, n_classes, val_features, val_labels,
        class_weight, seed, **options) -> head``. None: the head trains by
        gradient descent (any strategy).
    description : str, optional
        One line for the documentation and ``--help``.

    Examples
    --------
    >>> from astrofmtools.classify import get_head
    >>> mlp = get_head("mlp")
    >>> mlp.cls.__name__, mlp.options, mlp.frozen_only
    ('MLPHead', {'hidden': (256,), 'dropout': 0.2}, False)
    """

    def __init__(self, name, cls, options=None, fit=None, description=""):
        self.name, self.cls, self.fit = str(name), cls, fit
        self.options = dict(options or {})
        self.description = description

    @property
    def frozen_only(self):
        """Whether the head works on frozen features only (it has a closed-form fit)."""
        return self.fit is not None

    def __repr__(self):
        return f"HeadType({self.name!r}, {self.cls.__name__}, options={self.options})"


_HEADS = Registry("head")


def register_head(name, cls, options=None, fit=None, description="", overwrite=False):
    """
    Add a head to the registry that `make_head`, saved models and the command line read.

    Parameters
    ----------
    name, cls, options, fit, description
        As for `HeadType`.
    overwrite : bool, optional
        Replace a head of the same name.

    Returns
    -------
    head_type : `HeadType`

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.classify import LinearHead, list_heads, make_head, register_head
    >>> class CosineHead(LinearHead):
    ...     kind = "cosine_doc"
    ...     def classify(self, z):
    ...         return 10 * torch.nn.functional.normalize(z, dim=1) @ \\
    ...             torch.nn.functional.normalize(self.fc.weight, dim=1).T
    >>> _ = register_head("cosine_doc", CosineHead, description="cosine similarity to weights")
    >>> "cosine_doc" in list_heads()
    True
    >>> tuple(make_head("cosine_doc", 8, 3)(torch.rand(2, 8)).shape)
    (2, 3)
    """
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)) or not getattr(cls, "kind",
                                                                                    None):
        raise InputError(f"register_head needs a torch.nn.Module class with a 'kind'; got "
                         f"{cls!r}.")
    entry = HeadType(name, cls, options=options, fit=fit, description=description)
    return _HEADS.add(entry.name, entry, overwrite=overwrite)


def list_heads():
    """
    The names of the registered heads.

    Examples
    --------
    >>> from astrofmtools.classify import list_heads
    >>> list_heads()[:5]
    ['linear', 'mlp', 'whitening', 'knn', 'logistic']
    """
    return _HEADS.names()


def get_head(name):
    """
    The `HeadType` registered as ``name`` (an `InputError` listing the heads if none).

    Examples
    --------
    >>> from astrofmtools.classify import get_head
    >>> get_head("logistic").frozen_only
    True
    """
    return _HEADS.lookup(name)


def head_options():
    """Every option of every registered head, with its default (for the Classifier)."""
    out = {}
    for entry in _HEADS.values():
        for key, value in entry.options.items():
            out.setdefault(key, value)
    return out


def make_head(name, in_features, n_classes, **options):
    """
    Build an (unfitted) head by name.

    Parameters
    ----------
    name : str
        A registered head (`list_heads`): ``'linear'``, ``'mlp'``,
        ``'whitening'``, ``'knn'``, ``'logistic'`` or one added with
        `register_head`. ``'logistic'`` builds a `LinearHead` whose weights
        `fit_logistic_head` sets.
    in_features, n_classes : int
        Feature dimension and number of classes.
    **options
        The head's options (`HeadType.options`; e.g. ``hidden`` and
        ``dropout`` for ``'mlp'``); options of other heads are ignored.

    Returns
    -------
    head : `torch.nn.Module`

    Examples
    --------
    >>> from astrofmtools.classify import make_head
    >>> make_head("mlp", 16, 2, hidden=(8,)).config()
    {'kind': 'mlp', 'in_features': 16, 'n_classes': 2, 'hidden': [8], 'dropout': 0.2}
    """
    entry = get_head(name)
    unknown = set(options) - set(head_options())
    if unknown:
        raise InputError(f"Unknown head option(s) {sorted(unknown)}; the heads' options are "
                         f"{', '.join(head_options()) or 'none'}.")
    kwargs = {**entry.options, **{k: v for k, v in options.items() if k in entry.options}}
    return entry.cls(in_features, n_classes, **kwargs)


def head_from_config(config):
    """
    Rebuild a head from its ``config()`` dict (its weights still to be loaded).

    Parameters
    ----------
    config : dict
        As returned by a head's ``config()`` (stored in a saved
        classifier's ``config.json``).

    Returns
    -------
    head : `torch.nn.Module`

    Examples
    --------
    >>> from astrofmtools.classify import MLPHead, head_from_config
    >>> head = head_from_config(MLPHead(8, 3, hidden=(4,)).config())
    >>> type(head).__name__, head.hidden
    ('MLPHead', (4,))
    """
    config = dict(config)
    kind = config.pop("kind")
    classes = {entry.cls.kind: entry.cls for entry in _HEADS.values()}
    if kind not in classes:
        raise InputError(f"Unknown head kind {kind!r} in a saved classifier (known: "
                         f"{', '.join(classes)}).")
    return classes[kind](**config)


register_head("linear", LinearHead, description="a linear layer on standardised features")
register_head("mlp", MLPHead, options={"hidden": (256,), "dropout": 0.2},
              description="hidden layers (hidden, dropout) on standardised features")
register_head("whitening", WhiteningHead,
              description="features whitened (Ledoit-Wolf covariance), then linear")
register_head("knn", KNNHead, options={"k": 10}, fit=_fit_knn,
              description="cosine k-nearest neighbours (k) of the training features")
register_head("logistic", LinearHead, options={"C": None}, fit=_fit_logistic,
              description="scikit-learn logistic regression, C chosen on the validation split")
