# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Classification heads on top of backbone features.

Every head is a small `torch.nn.Module` mapping ``(N, D)`` features to
``(N, K)`` class logits, so that all of them save to and load from
safetensors the same way. Statistics fitted on the training features
(standardisation, whitening, the kNN memory bank) are non-trainable
buffers; the logistic regression is fitted by scikit-learn and then held as
a linear layer.
"""

import numpy as np
import torch
from torch import nn

from ..exceptions import InputError

__all__ = ["Standardize", "Whitening", "LinearHead", "MLPHead", "WhiteningHead", "KNNHead"]


def _as_tensor(x):
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


def _zero_linear(in_features, n_classes):
    """A linear layer starting at zero: the linear probe starts from uniform probabilities
    and its weights stay close to the span of the training features, instead of keeping
    random components that whitened or standardised test features would amplify."""
    layer = nn.Linear(in_features, n_classes)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _robust_scale(features):
    """
    Per-feature scales that never blow up a feature nearly constant in training.

    ``sqrt(var_j + mean(var))``: the variance of each feature shrunk towards
    the average one. Dividing by the plain standard deviation turns a
    feature that is almost constant over a few hundred training cutouts
    (common for pooled CNN activations) into one that is huge on new data.
    """
    var = features.var(axis=0)
    ref = var.mean()
    if not ref > 0:
        return np.ones(features.shape[1])
    return np.sqrt(var + ref)


class Standardize(nn.Module):
    """
    Per-feature standardisation with a mean and scale fitted on training data.

    The scale of feature j is ``sqrt(var_j + mean(var))`` rather than its
    standard deviation: the variances are shrunk towards their average, so
    that a feature nearly constant over the training set cannot become huge
    on new data (the usual failure of standardising a few hundred
    samples of 1000-odd pooled activations).

    Parameters
    ----------
    dim : int
        Number of features.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from astrofmtools.classify import Standardize
    >>> layer = Standardize(2)
    >>> layer.fit(np.array([[0.0, 10.0], [2.0, 30.0]]))
    Standardize(dim=2)
    >>> layer(torch.tensor([[1.0, 20.0]])).tolist()     # the mean maps to 0
    [[0.0, 0.0]]
    """

    def __init__(self, dim):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))

    def extra_repr(self):
        return f"dim={self.mean.shape[0]}"

    def fit(self, features):
        """Set the mean and standard deviation (floored) from ``(N, D)`` features."""
        features = np.asarray(features, dtype=np.float64)
        scale = _robust_scale(features)
        self.mean.copy_(_as_tensor(features.mean(axis=0)))
        self.scale.copy_(_as_tensor(scale))
        return self

    def forward(self, x):
        return (x - self.mean) / self.scale


class Whitening(nn.Module):
    """
    ZCA whitening with statistics fitted on training features.

    The features are first scaled (as `Standardize`), then whitened with
    the Ledoit-Wolf shrinkage estimate of their covariance
    (`sklearn.covariance.LedoitWolf`), which stays well conditioned when
    there are fewer training samples than feature dimensions, as is usual
    for a few hundred labelled cutouts and 384-1280 features. With N
    training samples only the N - 1 directions they span carry information:
    the others are projected out rather than amplified (whitening them
    would blow up the components of new data that the training set never
    showed).

    Parameters
    ----------
    dim : int
        Number of features.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from astrofmtools.classify import Whitening
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 3)) @ np.array([[3.0, 0, 0], [1, 1, 0], [0, 0, 1]])
    >>> round(float(np.corrcoef(x.T)[0, 1]), 1)          # correlated features
    0.3
    >>> white = Whitening(3).fit(x)(torch.as_tensor(x, dtype=torch.float32)).numpy()
    >>> np.allclose(np.cov(white.T), np.eye(3), atol=0.05)
    True
    """

    def __init__(self, dim):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("matrix", torch.eye(dim))

    def extra_repr(self):
        return f"dim={self.mean.shape[0]}"

    def fit(self, features):
        """Fit the mean and the whitening matrix (covariance^-1/2) to ``(N, D)`` features."""
        from sklearn.covariance import LedoitWolf
        features = np.asarray(features, dtype=np.float64)
        mean = features.mean(axis=0)
        # standardise first so that the shrinkage target suits every feature
        scale = _robust_scale(features)
        cov = LedoitWolf(assume_centered=True).fit((features - mean) / scale).covariance_
        evals, evecs = np.linalg.eigh(cov)  # ascending
        keep = min(len(evals), max(1, len(features) - 1))
        evals, evecs = evals[-keep:], evecs[:, -keep:]
        evals = np.maximum(evals, 1e-6 * evals.max())
        zca = (evecs / np.sqrt(evals)) @ evecs.T
        self.mean.copy_(_as_tensor(mean))
        self.matrix.copy_(_as_tensor(zca / scale[:, None]))
        return self

    def forward(self, x):
        return (x - self.mean) @ self.matrix


class _Head(nn.Module):
    """
    What every head shares: its sizes, its name and its constructor arguments.

    A subclass sets ``kind`` (its name in `make_head` and `head_from_config`)
    and returns its further constructor arguments from ``_options``;
    ``config()`` then rebuilds it (`head_from_config`).
    """

    kind = None

    def __init__(self, in_features, n_classes):
        super().__init__()
        self.in_features, self.n_classes = int(in_features), int(n_classes)

    def _options(self):
        """Constructor arguments besides ``in_features`` and ``n_classes``."""
        return {}

    def config(self):
        """Constructor arguments (JSON-serialisable)."""
        return {"kind": self.kind, "in_features": self.in_features,
                "n_classes": self.n_classes, **self._options()}


class _StandardizedHead(_Head):
    """
    A head in two parts: a fixed standardisation fitted on the training
    features (``transform``), then the trained layers (``classify``).

    The fixed part runs once over the training features while only
    ``classify`` trains (`~astrofmtools.classify.Classifier` with the
    ``frozen`` strategy). A subclass builds the trained layers and defines
    ``classify``.
    """

    def __init__(self, in_features, n_classes):
        super().__init__(in_features, n_classes)
        self.norm = Standardize(self.in_features)

    def fit_statistics(self, features):
        """Fit the non-trainable input statistics to the training features."""
        self.norm.fit(features)
        return self

    def transform(self, x):
        """The fixed (fitted, not trained) part: standardisation."""
        return self.norm(x)

    def classify(self, z):  # pragma: no cover - every subclass defines it
        """The trained part, on transformed features."""
        raise NotImplementedError

    def forward(self, x):
        return self.classify(self.transform(x))


class LinearHead(_StandardizedHead):
    """
    A linear classifier on standardised features.

    Parameters
    ----------
    in_features : int
        Feature dimension D.
    n_classes : int
        Number of classes K.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.classify import LinearHead
    >>> head = LinearHead(8, 3)
    >>> tuple(head(torch.zeros(5, 8)).shape)
    (5, 3)
    """

    kind = "linear"

    def __init__(self, in_features, n_classes):
        super().__init__(in_features, n_classes)
        self.fc = _zero_linear(self.in_features, self.n_classes)

    def classify(self, z):
        """The trained part, on transformed features."""
        return self.fc(z)


class MLPHead(_StandardizedHead):
    """
    A multi-layer perceptron on standardised features.

    Parameters
    ----------
    in_features : int
        Feature dimension D.
    n_classes : int
        Number of classes K.
    hidden : sequence of int, optional
        Widths of the hidden layers (each Linear, GELU, Dropout).
    dropout : float, optional
        Dropout probability after each hidden layer.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.classify import MLPHead
    >>> head = MLPHead(8, 2, hidden=(16, 16), dropout=0.1)
    >>> tuple(head(torch.zeros(5, 8)).shape), len(head.layers)
    ((5, 2), 7)
    """

    kind = "mlp"

    def __init__(self, in_features, n_classes, hidden=(256,), dropout=0.2):
        if isinstance(hidden, (int, np.integer)):
            hidden = (hidden,)
        hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in hidden):
            raise InputError(f"hidden layer widths must be positive integers; got {hidden}.")
        if not 0 <= float(dropout) < 1:
            raise InputError(f"dropout must be in [0, 1); got {dropout}.")
        super().__init__(in_features, n_classes)
        self.hidden, self.dropout = hidden, float(dropout)
        layers, width = [], self.in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.GELU(), nn.Dropout(self.dropout)]
            width = h
        layers.append(nn.Linear(width, self.n_classes))
        self.layers = nn.Sequential(*layers)

    def _options(self):
        return {"hidden": list(self.hidden), "dropout": self.dropout}

    def classify(self, z):
        """The trained part, on transformed features."""
        return self.layers(z)


class WhiteningHead(LinearHead):
    """
    A linear classifier on whitened features.

    The whitening (mean and covariance^-1/2, Ledoit-Wolf shrunk) is fitted
    on the training features and kept fixed; only the linear layer trains.
    Decorrelating the features helps when a few directions of the
    backbone's feature space dominate its variance, as for many
    self-supervised ViTs.

    Parameters
    ----------
    in_features : int
        Feature dimension D.
    n_classes : int
        Number of classes K.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.classify import WhiteningHead
    >>> head = WhiteningHead(8, 2)
    >>> tuple(head(torch.zeros(5, 8)).shape)
    (5, 2)
    """

    kind = "whitening"

    def __init__(self, in_features, n_classes):
        _Head.__init__(self, in_features, n_classes)  # whitening replaces the standardisation
        self.whiten = Whitening(self.in_features)
        self.fc = _zero_linear(self.in_features, self.n_classes)

    def fit_statistics(self, features):
        """Fit the whitening to the training features."""
        self.whiten.fit(features)
        return self

    def transform(self, x):
        """The fixed (fitted, not trained) part: whitening."""
        return self.whiten(x)


class KNNHead(_Head):
    """
    A weighted k-nearest-neighbour classifier with cosine similarity.

    The training features (L2-normalised) and labels are the head's
    buffers. A sample's class scores are the votes of its ``k`` most
    similar training samples, each weighted by ``exp(similarity /
    temperature)`` (as in the kNN evaluation of DINO) and by its class
    weight; the output "logits" are the log of the normalised votes, so a
    softmax gives the vote fractions.

    Parameters
    ----------
    in_features : int
        Feature dimension D.
    n_classes : int
        Number of classes K.
    n_train : int
        Number of training samples held.
    k : int, optional
        Number of neighbours (capped at ``n_train``).
    temperature : float, optional
        Temperature of the similarity weighting.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from astrofmtools.classify import KNNHead
    >>> train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> head = KNNHead(2, 2, n_train=4, k=3).fit(train, np.array([0, 0, 1, 1]))
    >>> head(torch.tensor([[1.0, 0.05]])).softmax(1).argmax(1).tolist()
    [0]
    """

    kind = "knn"

    def __init__(self, in_features, n_classes, n_train, k=10, temperature=0.07):
        if int(k) < 1:
            raise InputError(f"k must be a positive integer; got {k}.")
        super().__init__(in_features, n_classes)
        self.n_train, self.k, self.temperature = int(n_train), int(k), float(temperature)
        self.register_buffer("bank", torch.zeros(self.n_train, self.in_features))
        self.register_buffer("labels", torch.zeros(self.n_train, dtype=torch.int64))
        self.register_buffer("class_weight", torch.ones(self.n_classes))

    def fit(self, features, labels, class_weight=None):
        """Store the training features and integer labels (and optional class weights)."""
        features = torch.nn.functional.normalize(_as_tensor(features), dim=1)
        self.bank.copy_(features)
        self.labels.copy_(torch.as_tensor(np.asarray(labels, dtype=np.int64)))
        if class_weight is not None:
            self.class_weight.copy_(_as_tensor(class_weight))
        return self

    def fit_statistics(self, features):
        """Nothing to fit before training (the bank is set by `fit`)."""
        return self

    def _options(self):
        return {"n_train": self.n_train, "k": self.k, "temperature": self.temperature}

    def forward(self, x):
        x = torch.nn.functional.normalize(x.float(), dim=1)
        sim = x @ self.bank.T
        k = min(self.k, self.n_train)
        top, idx = sim.topk(k, dim=1)
        weight = torch.exp((top - 1.0) / self.temperature)
        weight = weight * self.class_weight[self.labels[idx]]
        votes = torch.zeros(x.shape[0], self.n_classes, dtype=x.dtype, device=x.device)
        votes.scatter_add_(1, self.labels[idx], weight)
        votes = votes / votes.sum(dim=1, keepdim=True).clamp_min(1e-30)
        return torch.log(votes.clamp_min(1e-12))
