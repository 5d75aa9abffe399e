# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""`Preprocess`: align raw cutout pixels to what a pretrained model expects."""

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..cutouts import parse_cutouts
from ..exceptions import InputError
from ..schema import BBOX_COLUMNS
from ..stretch import Stretch, multi_stretch, noise_floor
from .registry import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["Preprocess", "CHANNELS"]

#: How cutouts become the model's input channels.
CHANNELS = {
    "auto": "'repeat' for single-band cutouts, 'bands' for 3-band ones",
    "repeat": "one stretched image repeated into the 3 channels",
    "multi_stretch": "one channel per stretch of the same image (`stretches`)",
    "bands": "each band of (N, C, H, W) cutouts stretched on its own; the backbone's stem "
             "takes C channels (load_backbone(..., in_chans=C)) unless C == 3",
}

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


def _sizes_from_table(table):
    """Largest bbox side of each source, in cutout pixels, or None."""
    if table is None or not all(n in table.colnames for n in BBOX_COLUMNS):
        return None
    x0, x1, y0, y1 = (np.asarray(getattr(table[n], "value", table[n]), float)
                      for n in BBOX_COLUMNS)
    sizes = np.maximum(x1 - x0 + 1, y1 - y0 + 1)
    if "cutout_scale" in table.colnames:
        sizes = sizes / np.asarray(getattr(table["cutout_scale"], "value",
                                           table["cutout_scale"]), float)
    return sizes


def _sizes_from_data(data, k):
    """Largest side of the above-``k``-sigma island at (or nearest) each cutout's centre."""
    images = data if data.ndim == 3 else np.nanmean(data, axis=1)
    floored = noise_floor(images, rms="auto", k=k, background="auto")
    sizes = np.full(len(images), np.nan)
    for i, image in enumerate(floored):
        labels, n = ndimage.label(np.nan_to_num(image) > 0)
        if not n:
            continue
        cy, cx = (s // 2 for s in image.shape)
        label = labels[cy, cx]
        if not label:  # the island nearest the centre
            ys, xs = np.nonzero(labels)
            j = np.argmin((ys - cy) ** 2 + (xs - cx) ** 2)
            label = labels[ys[j], xs[j]]
        sl = ndimage.find_objects((labels == label).astype(int))[0]
        sizes[i] = max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start)
    return sizes


def _resize(images, size, interpolation):
    """Resize the last two axes to size x size with torch (antialiased when shrinking).

    After the stretch the images are finite, so the NaN-aware
    `~astrofmtools.stretch.resize` is not needed; torch's resampling is
    some 30 times faster than scikit-image's bicubic and is what timm and
    torchvision use for these models.
    """
    import torch
    import torch.nn.functional as F
    h, w = images.shape[-2:]
    if (h, w) == (size, size):
        return images
    lead = images.shape[:-2]
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).reshape(-1, 1, h, w)
    if interpolation == "nearest":
        out = F.interpolate(x, size=(size, size), mode="nearest-exact")
    else:
        out = F.interpolate(x, size=(size, size), mode=interpolation, align_corners=False,
                            antialias=size < max(h, w))
    return out.reshape(lead + (size, size)).numpy()


@dataclass
class Preprocess:
    """
    Turn raw cutout pixels into a model's normalised input.

    The steps, in order: a sigma-clip noise floor per cutout
    (`~astrofmtools.stretch.noise_floor`: subtract the clipped median and
    blank everything below ``noise_floor`` times the clipped rms); a central
    crop by ``zoom``; an interval and stretch per image (with the floor on:
    from 0, the floor, to the interval's upper limit over the pixels above
    the floor, so a small source in a large cutout still reaches 1)
    (`~astrofmtools.stretch.Stretch`, or
    `~astrofmtools.stretch.multi_stretch` for ``channels='multi_stretch'``);
    a resize to ``input_size`` x ``input_size`` (torch's bicubic or
    bilinear, antialiased when shrinking); the channels the model takes; and
    the model's normalisation ``(x - mean) / std``.

    The defaults suit radio continuum cutouts: the noise floor removes the
    noise and sidelobes a photograph-trained model would otherwise read as
    texture, and asinh over the 99.5 % interval keeps both the faint lobes
    and the bright core.

    Parameters
    ----------
    stretch : str, optional
        Stretch for ``'repeat'`` and ``'bands'`` channels (see
        `~astrofmtools.stretch.STRETCHES`).
    interval : str, optional
        Interval (see `~astrofmtools.stretch.INTERVALS`).
    percentile : float or (float, float), optional
        For ``interval='percentile'``.
    noise_floor : float or None, optional
        The threshold ``k`` (in clipped-rms units) of the noise floor; None
        turns it off (optical images with a sky you want to keep).
    channels : str, optional
        See `CHANNELS`: ``'auto'``, ``'repeat'``, ``'multi_stretch'``,
        ``'bands'``.
    stretches : tuple of str, optional
        The channel stretches for ``channels='multi_stretch'``.
    input_size : int, optional
        Output side, rounded to the nearest multiple of ``patch_size``.
    patch_size : int, optional
        The model's patch size (CNNs: total stride).
    zoom : float or ``'auto'``, optional
        Keep the central ``1 / zoom`` of each side before resizing (>= 1;
        1: the whole cutout). ``'auto'``: the zoom at which the median
        source spans at least one patch (`resolve_zoom`); small sources in
        large cutouts otherwise fall inside a single ViT patch.
    mean, std : tuple of float, optional
        The model's normalisation (per channel; for a number of channels
        other than their length, their averages are used).
    interpolation : str, optional
        ``'bicubic'``, ``'bilinear'`` or ``'nearest'`` resampling.

    Examples
    --------
    >>> import numpy as np
    >>> from astrofmtools.backbones import Preprocess
    >>> rng = np.random.default_rng(0)
    >>> cutouts = rng.normal(0, 1e-4, (4, 40, 40)).astype(np.float32)
    >>> cutouts[:, 18:22, 18:22] += 5e-3                       # a compact source
    >>> pre = Preprocess(input_size=64, patch_size=16)
    >>> x = pre.to_array(cutouts)                              # [0, 1], before normalisation
    >>> x.shape, float(x.min()), float(x.max())
    ((4, 3, 64, 64), 0.0, 1.0)
    >>> bool(x[0, 0, 0, 0] < 1e-6), bool(x[0, 0, 32, 32] > 0.9)  # noise floored, source bright
    (True, True)
    >>> pre(cutouts).shape                                     # normalised torch tensor
    torch.Size([4, 3, 64, 64])
    """

    stretch: str = "asinh"
    interval: str = "percentile"
    percentile: float = 99.5
    noise_floor: float = 3.0
    channels: str = "auto"
    stretches: tuple = ("linear", "asinh", "log")
    input_size: int = 224
    patch_size: int = 16
    zoom: float = 1.0
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    interpolation: str = "bicubic"

    def __post_init__(self):
        if self.channels not in CHANNELS:
            raise InputError(f"Unknown channels {self.channels!r}; use one of "
                             f"{', '.join(map(repr, CHANNELS))}.")
        if self.interpolation not in _INTERPOLATIONS:
            raise InputError(f"interpolation must be one of "
                             f"{', '.join(map(repr, _INTERPOLATIONS))}, "
                             f"not {self.interpolation!r}.")
        try:
            self.patch_size = int(self.patch_size)
            size = int(self.input_size)
        except (TypeError, ValueError):
            raise InputError("input_size and patch_size must be integers.") from None
        if self.patch_size < 1 or size < 1:
            raise InputError("input_size and patch_size must be positive.")
        self.input_size = max(1, int(round(size / self.patch_size))) * self.patch_size
        if isinstance(self.zoom, str):
            if self.zoom != "auto":
                raise InputError(f"zoom must be a number >= 1 or 'auto', not {self.zoom!r}.")
        else:
            try:
                self.zoom = float(self.zoom)
            except (TypeError, ValueError):
                raise InputError(f"zoom must be a number >= 1 or 'auto', not "
                                 f"{self.zoom!r}.") from None
            if not self.zoom >= 1:
                raise InputError(f"zoom must be >= 1 (a central crop), not {self.zoom!r}.")
        if self.noise_floor is not None:
            self.noise_floor = float(self.noise_floor)
        if not np.isscalar(self.percentile):
            self.percentile = tuple(float(p) for p in self.percentile)
        self.stretches = tuple(self.stretches)
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        if len(self.mean) != len(self.std) or not self.mean or min(self.std) <= 0:
            raise InputError("mean and std need the same number (> 0) of values, std > 0.")
        # fail now, not at the first batch
        Stretch(self.stretch, interval=self.interval, percentile=self.percentile)

    @classmethod
    def from_spec(cls, spec, in_chans=3, **kwargs):
        """
        The preprocessing for a registry entry (`BackboneSpec` or name).

        Parameters
        ----------
        spec : `BackboneSpec` or str
        in_chans : int, optional
            The backbone's input channels: not 3 selects ``channels='bands'``.
        **kwargs
            Other settings.

        Returns
        -------
        preprocess : `Preprocess`

        Examples
        --------
        >>> from astrofmtools.backbones import Preprocess
        >>> pre = Preprocess.from_spec("dinov2_vits14")
        >>> pre.input_size, pre.patch_size, pre.mean
        (224, 14, (0.485, 0.456, 0.406))
        """
        from .registry import get_backbone_spec
        spec = get_backbone_spec(spec)
        settings = dict(input_size=spec.input_size, patch_size=spec.patch_size, mean=spec.mean,
                        std=spec.std, interpolation=spec.interpolation,
                        channels="auto" if in_chans == 3 else "bands")
        settings.update(kwargs)
        return cls(**settings)

    def to_dict(self):
        """
        The settings as a JSON-serialisable dict.

        Examples
        --------
        >>> import json
        >>> from astrofmtools.backbones import Preprocess
        >>> d = Preprocess(zoom="auto").to_dict()
        >>> Preprocess.from_dict(json.loads(json.dumps(d))) == Preprocess(zoom="auto")
        True
        """
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, d):
        """Rebuild from `to_dict` output (unknown keys raise `~astrofmtools.InputError`)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"Unknown preprocessing settings: {', '.join(sorted(unknown))}.")
        return cls(**d)

    def replace(self, **changes):
        """
        A copy with some settings changed.

        Examples
        --------
        >>> from astrofmtools.backbones import Preprocess
        >>> Preprocess().replace(zoom=2).zoom
        2.0
        """
        return dataclasses.replace(self, **changes)

    def resolve_zoom(self, cutouts, source_size=None):
        """
        The zoom used for these cutouts: ``zoom`` itself, or the ``'auto'`` value.

        With ``zoom='auto'``, the median source size ``s`` (cutout pixels)
        gives ``zoom = patch_size * H / (s * input_size)``: the crop is then
        ``input_size / patch_size`` source sizes wide, so the median source
        spans one patch after resizing. The zoom is at least 1 (never
        shrinks the field of view below the cutout) and leaves at least 2
        pixels. Source sizes come from ``source_size``, else from a
        `~astrofmtools.cutouts.CutoutStack` table's bounding boxes (divided
        by ``cutout_scale``), else from the data: the largest side of the
        island above the noise floor at (or nearest) each cutout's centre.
        To apply a training set's zoom to new data, freeze it:
        ``pre = pre.replace(zoom=pre.resolve_zoom(train))``.

        Parameters
        ----------
        cutouts : array or `~astrofmtools.cutouts.CutoutStack`
        source_size : float or array, optional
            Source sizes (cutout pixels), one or one per cutout.

        Returns
        -------
        zoom : float

        Examples
        --------
        >>> import numpy as np
        >>> from astrofmtools.backbones import Preprocess
        >>> pre = Preprocess(zoom="auto", input_size=224, patch_size=14)
        >>> cutouts = np.zeros((2, 128, 128))
        >>> pre.resolve_zoom(cutouts, source_size=4.0)     # 14 * 128 / (4 * 224)
        2.0
        >>> pre.resolve_zoom(cutouts, source_size=20.0)    # already large enough
        1.0
        """
        if self.zoom != "auto":
            return float(self.zoom)
        data, table = parse_cutouts(cutouts, index_table=False)
        if source_size is not None:
            sizes = np.broadcast_to(np.asarray(source_size, dtype=float), (len(data),))
        else:
            sizes = _sizes_from_table(table)
            if sizes is None:
                sizes = _sizes_from_data(data, 3.0 if self.noise_floor is None
                                         else self.noise_floor)
        sizes = sizes[np.isfinite(sizes) & (sizes > 0)]
        if not sizes.size:
            return 1.0
        side = min(data.shape[-2:])
        zoom = self.patch_size * side / (float(np.median(sizes)) * self.input_size)
        return round(float(np.clip(zoom, 1.0, max(1.0, side / 2))), 4)

    def _plan(self, data):
        """The channel mode for these data, and the number of output channels."""
        n_bands = 1 if data.ndim == 3 else data.shape[1]
        mode = self.channels
        if mode == "auto":
            if n_bands == 1:
                mode = "repeat"
            elif n_bands == 3:
                mode = "bands"
            else:
                raise InputError(
                    f"The cutouts have {n_bands} bands. Use channels='bands' with a backbone "
                    f"loaded with in_chans={n_bands}, or pick 3 (or 1) of the bands (e.g. "
                    "stack.data[:, [0, 1, 2]]).")
        if mode in ("repeat", "multi_stretch") and n_bands != 1:
            raise InputError(f"channels={mode!r} needs single-band cutouts; these have "
                             f"{n_bands} bands (use channels='bands').")
        if mode == "repeat":
            return mode, 3
        if mode == "multi_stretch":
            return mode, len(self.stretches)
        return mode, n_bands

    def to_array(self, cutouts, source_size=None, zoom=None):
        """
        The preprocessed images in [0, 1], before normalisation.

        For augmentation pipelines that work on [0, 1] images; `normalize`
        then finishes the job.

        Parameters
        ----------
        cutouts : array or `~astrofmtools.cutouts.CutoutStack`
            Raw pixels, (N, H, W) or (N, C, H, W) (NaN allowed), a stack,
            or a list of stacks.
        source_size : float or array, optional
            For ``zoom='auto'`` (see `resolve_zoom`).
        zoom : float, optional
            Use this zoom instead of resolving ``self.zoom`` (for batches of
            a set whose zoom was resolved once).

        Returns
        -------
        images : `~numpy.ndarray`
            float32 (N, C, S, S) with S = ``input_size``; C = 3 except for
            ``'bands'`` (the number of bands) and ``'multi_stretch'`` (the
            number of stretches).

        Examples
        --------
        >>> import numpy as np
        >>> from astrofmtools.backbones import Preprocess
        >>> bands = np.random.default_rng(1).normal(size=(2, 5, 32, 32))
        >>> Preprocess(channels="bands", input_size=32).to_array(bands).shape
        (2, 5, 32, 32)
        >>> Preprocess(channels="multi_stretch", input_size=32).to_array(bands[:, 0]).shape
        (2, 3, 32, 32)
        """
        data, _ = parse_cutouts(cutouts, index_table=False)
        mode, n_out = self._plan(data)
        if data.ndim == 4 and data.shape[1] == 1 and mode != "bands":
            data = data[:, 0]
        zoom = self.resolve_zoom(cutouts, source_size) if zoom is None else float(zoom)
        floored = self.noise_floor is not None
        if floored:
            # pixels below the floor become NaN, so that the interval is set by the source
            # pixels alone (a percentile over a mostly floored cutout would be 0), then 0
            data = noise_floor(data, rms="auto", k=self.noise_floor, background="auto",
                               floor=np.nan)
        if zoom > 1:
            h, w = data.shape[-2:]
            ch, cw = max(2, int(round(h / zoom))), max(2, int(round(w / zoom)))
            y0, x0 = (h - ch) // 2, (w - cw) // 2
            data = data[..., y0:y0 + ch, x0:x0 + cw]
        vmin = 0.0 if floored else None
        if mode == "multi_stretch":
            images = multi_stretch(data, stretches=self.stretches, interval=self.interval,
                                   percentile=self.percentile, vmin=vmin, fill=0.0)
        else:
            images = Stretch(self.stretch, interval=self.interval, percentile=self.percentile,
                             vmin=vmin, fill=0.0)(data)
        images = _resize(np.nan_to_num(images, nan=0.0), self.input_size, self.interpolation)
        np.clip(images, 0.0, 1.0, out=images)
        if mode == "repeat":
            images = np.repeat(images[:, None], n_out, axis=1)
        elif images.ndim == 3:
            images = images[:, None]
        return np.ascontiguousarray(images, dtype=np.float32)

    @property
    def tensor_supported(self):
        """
        Whether `to_tensor` runs these settings in torch (else it falls back to NumPy).

        True for the intervals ``'percentile'``, ``'minmax'`` and
        ``'manual'`` with the named stretches (see
        `~astrofmtools.backbones.preprocess_tensor.TENSOR_STRETCHES`), for
        every ``channels``; False for ``'zscale'`` and astropy objects.

        Examples
        --------
        >>> from astrofmtools.backbones import Preprocess
        >>> Preprocess().tensor_supported, Preprocess(interval="zscale").tensor_supported
        (True, False)
        """
        from .preprocess_tensor import tensor_supported
        return tensor_supported(self)

    def to_tensor(self, cutouts, device=None, zoom=None, source_size=None):
        """
        The normalised model input, computed in torch on ``device`` for a whole batch.

        The same steps and results as ``normalize(to_array(cutouts))`` (to
        a few 1e-6), batched in torch so that a GPU preprocesses as fast as
        it runs the model (`~astrofmtools.backbones.preprocess_tensor`).
        Settings without a tensor implementation (`tensor_supported` False)
        run the NumPy path and the result is moved to ``device``.

        Parameters
        ----------
        cutouts : array, `torch.Tensor` or `~astrofmtools.cutouts.CutoutStack`
            Raw pixels, (N, H, W) or (N, C, H, W), NaN allowed; any real
            dtype (integers are copied as they are and become float32 on the
            device).
        device : str or `torch.device`, optional
            Where to compute; default: the tensor's device, the CPU for
            arrays.
        zoom : float, optional
            Use this zoom instead of resolving ``self.zoom`` (as for
            `to_array`).
        source_size : float or array, optional
            For ``zoom='auto'`` (see `resolve_zoom`).

        Returns
        -------
        x : `torch.Tensor`
            float32 (N, C, S, S) on ``device``, C and S as for `to_array`.

        Examples
        --------
        >>> import numpy as np
        >>> from astrofmtools.backbones import Preprocess
        >>> rng = np.random.default_rng(0)
        >>> cutouts = rng.normal(0, 1e-4, (4, 40, 40)).astype(np.float32)
        >>> cutouts[:, 18:22, 18:22] += 5e-3
        >>> cutouts[0, :5] = np.nan                                 # blanked pixels
        >>> pre = Preprocess(input_size=64, patch_size=16)
        >>> x = pre.to_tensor(cutouts, device="cpu")
        >>> x.shape, x.dtype, x.device.type
        (torch.Size([4, 3, 64, 64]), torch.float32, 'cpu')
        >>> float((x - pre(cutouts)).abs().max()) < 1e-4              # the NumPy path
        True
        """
        import torch
        if not self.tensor_supported:
            if isinstance(cutouts, torch.Tensor):
                device = cutouts.device if device is None else device
                cutouts = cutouts.detach().cpu().numpy()
            return self(cutouts, source_size=source_size, zoom=zoom).to(
                "cpu" if device is None else device)
        from .preprocess_tensor import normalize_tensor, preprocess_tensor
        if zoom is None and self.zoom == "auto":
            host = cutouts.detach().cpu().numpy() if isinstance(cutouts, torch.Tensor) \
                else cutouts
            zoom = self.resolve_zoom(host, source_size)
        return normalize_tensor(self, preprocess_tensor(self, cutouts, device=device, zoom=zoom))

    def _channel_stats(self, n):
        """The normalisation's (mean, std) for ``n`` channels (their averages unless 3)."""
        if len(self.mean) == n:
            return self.mean, self.std
        return (float(np.mean(self.mean)),) * n, (float(np.mean(self.std)),) * n

    def normalize(self, images):
        """
        Apply the model's normalisation to [0, 1] images.

        Parameters
        ----------
        images : `~numpy.ndarray` or `torch.Tensor`
            (N, C, S, S) as from `to_array` (augmented or not).

        Returns
        -------
        x : `torch.Tensor`
            float32 ``(images - mean) / std`` per channel.

        Examples
        --------
        >>> import numpy as np
        >>> from astrofmtools.backbones import Preprocess
        >>> pre = Preprocess(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        >>> pre.normalize(np.ones((1, 3, 2, 2), np.float32)).unique()
        tensor([1.])
        """
        import torch
        x = torch.as_tensor(images, dtype=torch.float32)
        if x.ndim != 4:
            raise InputError(f"normalize needs (N, C, S, S) images, not shape {tuple(x.shape)}.")
        n = x.shape[1]
        mean, std = self._channel_stats(n)
        mean = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, n, 1, 1)
        std = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, n, 1, 1)
        return (x - mean) / std

    def __call__(self, cutouts, source_size=None, zoom=None):
        """
        Preprocess and normalise: the model's input.

        Parameters
        ----------
        cutouts, source_size, zoom
            As for `to_array`.

        Returns
        -------
        x : `torch.Tensor`
            float32 (N, C, S, S).
        """
        return self.normalize(self.to_array(cutouts, source_size=source_size, zoom=zoom))
