# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
How much of a backbone trains: adaptation strategies as objects in one registry.

A `Strategy` says which parameters of a backbone train and how fast
(parameter groups with layer-wise learning-rate decay), which parts stay in
evaluation mode (batch-norm statistics of pretrained CNNs stay fixed), how it
changes the backbone before training (adapters) and what a saved model
stores to rebuild it. `~astrofmtools.classify.Classifier`,
`~astrofmtools.detect.Detector` and the command line read the registry, so a
new strategy is one class and one `register_strategy` line.

``frozen``
    The backbone never changes: features are extracted once and only the
    head trains (seconds on a CPU).
``partial``
    The last ``n_blocks`` of the backbone's layer groups
    (`~astrofmtools.backbones.Backbone.layer_groups`: ViT blocks, CNN
    stages) train together with the head; the rest, batch-norm statistics
    included, stay fixed.
``finetune``
    Every parameter trains, after a head warm-up with the backbone frozen,
    with layer-wise learning-rate decay.
``lora``
    Low-rank adapters (`peft`) on the backbone's attention and MLP
    projections (ViTs) or convolutions of the last stages (CNNs)
    (`~astrofmtools.backbones.Backbone.lora_targets`) train with the head;
    the base weights and batch-norm statistics stay bit-identical.
``bitfit``
    Only the biases and the scales and shifts of the normalisation layers
    train (`~astrofmtools.adapt.bitfit`).
"""

from torch import nn

from ..exceptions import InputError
from ..utils.registry import Registry
from .settings import TrainSettings

__all__ = ["Strategy", "Frozen", "Partial", "Finetune", "LoRA", "register_strategy",
           "get_strategy", "list_strategies", "strategy_options", "apply_lora",
           "count_parameters"]

_REGISTRY = Registry("strategy")

#: Modules whose running statistics a pretrained backbone keeps.
NORM_STATISTICS = (nn.modules.batchnorm._BatchNorm,)


def register_strategy(cls=None, *, overwrite=False):
    """
    Add a `Strategy` subclass to the registry under its ``name`` (a class decorator).

    Parameters
    ----------
    cls : type
        A subclass of `Strategy` with a unique ``name``.
    overwrite : bool, optional
        Replace a strategy of the same name (``@register_strategy(overwrite=True)``).

    Returns
    -------
    cls : type
        Unchanged, so that this works as a decorator.

    Examples
    --------
    >>> from astrofmtools.adapt import Strategy, list_strategies, register_strategy
    >>> @register_strategy
    ... class HeadOnly(Strategy):
    ...     name = "head_only_doc"
    ...     trains_backbone = False
    ...     def trainable_groups(self, backbone):
    ...         return []
    >>> "head_only_doc" in list_strategies()
    True
    """
    def add(cls):
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise InputError(f"register_strategy needs a Strategy subclass; got {cls!r}.")
        return _REGISTRY.add(cls.name, cls, overwrite=overwrite)
    return add if cls is None else add(cls)


def list_strategies():
    """
    The names of the registered strategies.

    Examples
    --------
    >>> from astrofmtools.adapt import list_strategies
    >>> [s for s in list_strategies() if s in ("frozen", "partial", "finetune", "lora")]
    ['frozen', 'partial', 'finetune', 'lora']
    """
    return _REGISTRY.names()


def strategy_options(name=None):
    """
    The options of a registered strategy (or of all of them) with their defaults.

    Read from the classes: nothing is instantiated.

    Examples
    --------
    >>> from astrofmtools.adapt import strategy_options
    >>> strategy_options("partial")
    {'n_blocks': 2}
    >>> "lora_r" in strategy_options()
    True
    """
    if name is not None:
        return dict(_REGISTRY.lookup(name).options)
    out = {}
    for cls in _REGISTRY.values():
        for key, value in cls.options.items():
            out.setdefault(key, value)
    return out


def get_strategy(strategy, **options):
    """
    A strategy object from a name, a class or an instance.

    Parameters
    ----------
    strategy : str, type or `Strategy`
        A registered name (`list_strategies`), a `Strategy` subclass, or an
        instance (returned as it is; ``options`` must then be empty).
    **options
        The strategy's options (`Strategy.options`), e.g. ``n_blocks`` for
        ``partial``.

    Returns
    -------
    strategy : `Strategy`

    Examples
    --------
    >>> from astrofmtools.adapt import get_strategy
    >>> get_strategy("partial", n_blocks=1)
    Partial(n_blocks=1)
    >>> get_strategy("full")
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: Unknown strategy 'full'; choose one of frozen, partial, ...
    """
    if isinstance(strategy, Strategy):
        if options:
            raise InputError(f"Options {sorted(options)} given with a ready strategy object "
                             f"{strategy!r}; set them on the object.")
        return strategy
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        return strategy(**options)
    return _REGISTRY.lookup(strategy)(**options)


def count_parameters(module, trainable=None):
    """
    Number of parameters of a module.

    Parameters
    ----------
    module : `torch.nn.Module`
    trainable : bool or None, optional
        True: only those with ``requires_grad``; False: only those without;
        None: all.

    Returns
    -------
    n : int

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.adapt import count_parameters
    >>> layer = torch.nn.Linear(3, 2)
    >>> count_parameters(layer)
    8
    >>> _ = layer.bias.requires_grad_(False)
    >>> count_parameters(layer, trainable=True)
    6
    """
    return int(sum(p.numel() for p in module.parameters()
                   if trainable is None or p.requires_grad == trainable))


class Strategy:
    """
    How a backbone adapts: the base class of every strategy.

    A subclass sets ``name`` (its registry key), ``options`` (its own
    settings and their defaults, stored in saved models) and ``defaults``
    (its training schedule, `TrainSettings` fields), and defines
    `trainable_groups`. The other methods have defaults that suit most
    strategies:

    - `prepare` changes the backbone before training and before loading a
      saved model (LoRA injects its adapters there);
    - `configure` sets ``requires_grad`` for a phase (head warm-up or main);
    - `set_train_mode` puts what does not train in evaluation mode after
      ``model.train()`` (and batch-norm statistics of pretrained backbones);
    - `param_groups` builds the optimiser's groups with layer-wise decay;
    - `saved_state` says which backbone tensors a saved model stores (the
      whole backbone by default; nothing for ``frozen``; the adapters for
      ``lora``).

    Attributes
    ----------
    name : str
        Registry key (`register_strategy`).
    options : dict
        The strategy's own options and their defaults.
    defaults : dict
        `TrainSettings` values of a classifier with this strategy.
    trains_backbone : bool
        False when the backbone never changes (features can be computed once).
    layer_decay : bool
        Whether the layer-wise learning-rate decay applies to its groups.

    Examples
    --------
    Train only the last layer group, at its own learning rate:

    >>> from astrofmtools.adapt import Strategy
    >>> class LastGroup(Strategy):
    ...     name = "last_group_doc"
    ...     def trainable_groups(self, backbone):
    ...         return [(0, list(list(backbone.layer_groups())[-1].parameters()))]
    >>> LastGroup().settings(epochs=5).epochs
    5
    """

    name = None
    options = {}
    defaults = {"epochs": 30, "lr": 1e-4, "batch_size": 32, "patience": 8,
                "head_warmup_epochs": 3}
    #: The end-to-end recipe shared by ``partial``, ``finetune`` and ``lora`` (issue 18):
    #: the whole cosine schedule with its last weights (no early stopping on a noisy
    #: validation loss) and label smoothing; ``benchmarks/finetune_recipe_frdeep.py``.
    END_TO_END = {"keep_best": False, "label_smoothing": 0.1}
    trains_backbone = True
    layer_decay = False

    def __init__(self, **options):
        unknown = set(options) - set(self.options)
        if unknown:
            known = ", ".join(self.options) or "none"
            raise InputError(f"Unknown option(s) {sorted(unknown)} of strategy {self.name!r} "
                             f"(its options: {known}).")
        for key, default in self.options.items():
            setattr(self, key, options.get(key, default))

    def __repr__(self):
        opts = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.options)
        return f"{type(self).__name__}({opts})"

    def config(self):
        """The name and options (JSON-serialisable), as stored in a saved model."""
        return {"name": self.name, **{k: getattr(self, k) for k in self.options}}

    def settings(self, **given):
        """The strategy's `TrainSettings`, with the ``given`` values (None: the default)."""
        return TrainSettings().replace(**self.defaults).replace(**given)

    # ------------------------------------------------------------------ the backbone
    def prepare(self, backbone):
        """Change the backbone before training or loading (default: nothing)."""

    def trainable_groups(self, backbone):
        """
        The backbone's parameters that train in the main phase.

        Returns
        -------
        groups : list of (int, list of `torch.nn.Parameter`)
            ``(depth, params)``; depth 0 is the top (last) layer group, and
            the learning rate of a group is ``lr * layer_decay ** depth``.
        """
        raise NotImplementedError

    def frozen_modules(self, backbone):
        """Backbone modules kept in evaluation mode in the main phase."""
        return []

    def learns_norm_statistics(self, train_norm_stats):
        """Whether batch-norm running statistics update in the main phase."""
        return bool(train_norm_stats)

    def configure(self, backbone, warmup=False):
        """Set ``requires_grad`` of the backbone for a phase (warm-up: nothing trains)."""
        for p in backbone.parameters():
            p.requires_grad_(False)
        if not warmup:
            for _, params in self.trainable_groups(backbone):
                for p in params:
                    p.requires_grad_(True)

    def set_train_mode(self, backbone, warmup=False, train_norm_stats=False):
        """After ``model.train()``: evaluation mode for the parts that do not train."""
        if warmup or not self.trains_backbone:
            backbone.eval()
            return
        for module in self.frozen_modules(backbone):
            module.eval()
        if not self.learns_norm_statistics(train_norm_stats):
            for module in backbone.modules():
                if isinstance(module, NORM_STATISTICS):
                    module.eval()

    def param_groups(self, backbone, lr, layer_decay=1.0, weight_decay=0.0):
        """Optimiser groups of the backbone (``base_lr`` is the unscheduled rate)."""
        decay = layer_decay if self.layer_decay else 1.0
        groups = []
        for depth, params in self.trainable_groups(backbone):
            if params:
                glr = lr * decay ** depth
                groups.append({"params": params, "lr": glr, "base_lr": glr,
                               "weight_decay": weight_decay})
        return groups

    def n_trainable(self, backbone):
        """Parameters of the backbone trained in the main phase."""
        return int(sum(p.numel() for _, params in self.trainable_groups(backbone)
                       for p in params))

    # ------------------------------------------------------------------ saving
    def saved_state(self, backbone):
        """
        The backbone tensors a saved model must store (keys of ``backbone.state_dict()``).

        Default: the whole backbone. A strategy that leaves most weights
        untouched stores only what it changed, and the rest is rebuilt from
        the weights reference.
        """
        return dict(backbone.state_dict())

    def stores_whole_backbone(self, backbone):
        """Whether `saved_state` is the whole backbone."""
        return set(self.saved_state(backbone)) == set(backbone.state_dict())


def _layer_groups(backbone):
    """``[(depth, params)]`` of the backbone's layer groups, top first, each parameter once."""
    out, seen = [], set()
    for depth, group in enumerate(reversed(list(backbone.layer_groups()))):
        params = [p for p in group.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        out.append((depth, params))
    return out, seen


@register_strategy
class Frozen(Strategy):
    """
    The backbone never changes; only the head trains (features once).

    Examples
    --------
    >>> from astrofmtools.adapt import Frozen
    >>> Frozen().trains_backbone, Frozen().settings().epochs
    (False, 200)
    """

    name = "frozen"
    defaults = {"epochs": 200, "lr": 1e-3, "batch_size": 64, "patience": 20,
                "head_warmup_epochs": 0}
    trains_backbone = False

    def trainable_groups(self, backbone):
        return []

    def frozen_modules(self, backbone):
        return [backbone]

    def saved_state(self, backbone):
        return {}


@register_strategy
class Partial(Strategy):
    """
    The last ``n_blocks`` layer groups train, with layer-wise decay; the rest is fixed.

    Examples
    --------
    >>> from astrofmtools.backbones import BackboneSpec, load_backbone
    >>> spec = BackboneSpec(name="vit_doc", timm_name="vit_tiny_patch16_224", patch_size=8,
    ...                     input_size=32, feature_dim=32, licence="none",
    ...                     timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2,
    ...                                  "embed_dim": 32, "num_heads": 2})
    >>> backbone = load_backbone(spec, weights="random")
    >>> from astrofmtools.adapt import Partial
    >>> [depth for depth, _ in Partial(n_blocks=1).trainable_groups(backbone)]
    [0]
    >>> groups = Partial(n_blocks=2).param_groups(backbone, lr=1e-3, layer_decay=0.5)
    >>> [g["lr"] for g in groups]
    [0.001, 0.0005]
    """

    name = "partial"
    options = {"n_blocks": 2}
    defaults = {"epochs": 30, "lr": 3e-4, "batch_size": 32, "patience": 8,
                "head_warmup_epochs": 3, **Strategy.END_TO_END}
    layer_decay = True

    def __init__(self, **options):
        super().__init__(**options)
        self.n_blocks = int(self.n_blocks)

    def _check(self, backbone):
        n = len(list(backbone.layer_groups()))
        if not 1 <= self.n_blocks <= n:
            raise InputError(f"n_blocks must be between 1 and {n} (the layer groups of "
                             f"{backbone.spec.name!r}); got {self.n_blocks}.")
        return n

    def trainable_groups(self, backbone):
        self._check(backbone)
        return _layer_groups(backbone)[0][:self.n_blocks]

    def frozen_modules(self, backbone):
        groups = list(backbone.layer_groups())
        return groups[:self._check(backbone) - self.n_blocks]


@register_strategy
class Finetune(Strategy):
    """
    Every parameter trains, after a head warm-up, with layer-wise decay.

    Examples
    --------
    >>> from astrofmtools.backbones import BackboneSpec, load_backbone
    >>> spec = BackboneSpec(name="vit_doc", timm_name="vit_tiny_patch16_224", patch_size=8,
    ...                     input_size=32, feature_dim=32, licence="none",
    ...                     timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2,
    ...                                  "embed_dim": 32, "num_heads": 2})
    >>> backbone = load_backbone(spec, weights="random")
    >>> from astrofmtools.adapt import Finetune
    >>> Finetune().n_trainable(backbone) == sum(p.numel() for p in backbone.parameters())
    True
    """

    name = "finetune"
    defaults = {"epochs": 30, "lr": 1e-4, "batch_size": 32, "patience": 8,
                "head_warmup_epochs": 3, **Strategy.END_TO_END}
    layer_decay = True

    def trainable_groups(self, backbone):
        out, seen = _layer_groups(backbone)
        # parameters outside every group (e.g. a class token) train with the first group
        rest = [p for p in backbone.parameters() if id(p) not in seen]
        if rest:
            out[-1] = (out[-1][0], out[-1][1] + rest)
        return out


def apply_lora(backbone, r=8, alpha=16, dropout=0.0, target_modules=None):
    """
    Inject LoRA adapters into a backbone, in place, and freeze everything else.

    Parameters
    ----------
    backbone : `~astrofmtools.backbones.Backbone`
        The backbone; adapters go into ``backbone.model``.
    r : int, optional
        Rank of the adapters.
    alpha : float, optional
        LoRA scaling numerator (the update is scaled by ``alpha / r``).
    dropout : float, optional
        Dropout on the adapters' input.
    target_modules : list of str, optional
        Module-name patterns (default: ``backbone.lora_targets()``).

    Returns
    -------
    targets : list of str
        The patterns used.

    Examples
    --------
    >>> from astrofmtools.backbones import BackboneSpec, load_backbone
    >>> from astrofmtools.adapt import apply_lora, count_parameters
    >>> spec = BackboneSpec(name="vit_doc", timm_name="vit_tiny_patch16_224", patch_size=8,
    ...                     input_size=32, feature_dim=32, licence="none",
    ...                     timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2,
    ...                                  "embed_dim": 32, "num_heads": 2})
    >>> backbone = load_backbone(spec, weights="random")
    >>> targets = apply_lora(backbone, r=1)
    >>> count_parameters(backbone, trainable=True) < 0.05 * count_parameters(backbone)
    True
    """
    from peft import LoraConfig, inject_adapter_in_model

    targets = list(target_modules if target_modules is not None else backbone.lora_targets())
    if not targets:
        raise InputError(f"Backbone {backbone.spec.name!r} names no LoRA target modules.")
    config = LoraConfig(r=int(r), lora_alpha=alpha, lora_dropout=float(dropout),
                        target_modules=targets, bias="none")
    for p in backbone.parameters():
        p.requires_grad_(False)
    inject_adapter_in_model(config, backbone.model)
    n_lora = 0
    for name, p in backbone.named_parameters():
        is_lora = "lora_" in name
        p.requires_grad_(is_lora)
        n_lora += is_lora
    if n_lora == 0:
        raise InputError(f"No module of backbone {backbone.spec.name!r} matched the LoRA "
                         f"targets {targets}.")
    return targets


@register_strategy
class LoRA(Strategy):
    """
    Low-rank adapters train with the head; base weights and statistics stay fixed.

    Examples
    --------
    >>> from astrofmtools.backbones import BackboneSpec, load_backbone
    >>> spec = BackboneSpec(name="vit_doc", timm_name="vit_tiny_patch16_224", patch_size=8,
    ...                     input_size=32, feature_dim=32, licence="none",
    ...                     timm_kwargs={"img_size": 32, "patch_size": 8, "depth": 2,
    ...                                  "embed_dim": 32, "num_heads": 2})
    >>> backbone = load_backbone(spec, weights="random")
    >>> from astrofmtools.adapt import LoRA
    >>> lora = LoRA(lora_r=2)
    >>> lora.prepare(backbone)  # the adapters go in
    >>> sorted(lora.saved_state(backbone))[0]  # a saved model stores only them
    'model.blocks.0.attn.proj.lora_A.default.weight'
    """

    name = "lora"
    options = {"lora_r": 8, "lora_alpha": 16.0, "target_modules": None}
    defaults = {"epochs": 30, "lr": 1e-3, "batch_size": 32, "patience": 8,
                "head_warmup_epochs": 1, **Strategy.END_TO_END}

    def __init__(self, **options):
        super().__init__(**options)
        self.lora_r, self.lora_alpha = int(self.lora_r), float(self.lora_alpha)

    def prepare(self, backbone):
        self.target_modules = apply_lora(backbone, r=self.lora_r, alpha=self.lora_alpha,
                                         target_modules=self.target_modules)

    def trainable_groups(self, backbone):
        return [(0, [p for n, p in backbone.named_parameters() if "lora_" in n])]

    def learns_norm_statistics(self, train_norm_stats):
        return False

    def saved_state(self, backbone):
        return {k: v for k, v in backbone.state_dict().items() if "lora_" in k}
