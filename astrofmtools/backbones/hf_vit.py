# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Hugging Face transformers ViT checkpoints (ViT-MSN) in timm's VisionTransformer layout."""

__all__ = ["convert_hf_vit"]

# block sub-modules: transformers 4 names (the checkpoints on the Hub) and 5 names
_BLOCK = {
    "attention.output.dense": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
    "attention.o_proj": "attn.proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "layernorm_before": "norm1",
    "layernorm_after": "norm2",
}
_QKV = {
    "attention.attention.query": "query", "attention.attention.key": "key",
    "attention.attention.value": "value",
    "attention.q_proj": "query", "attention.k_proj": "key", "attention.v_proj": "value",
}
_TOP = {
    "embeddings.cls_token": "cls_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight",
    "layernorm.bias": "norm.bias",
}
# transformers keeps these; a timm feature extractor has no use for them
_DROP = ("embeddings.mask_token", "pooler.", "classifier.")


def convert_hf_vit(state_dict):
    """
    Rename a transformers ``ViTModel`` / ``ViTMSNModel`` state dict to timm's ViT layout.

    Both layouts are read: transformers 4 (``encoder.layer.N.attention.
    attention.query``, as the checkpoints on the Hub are saved) and
    transformers 5 (``layers.N.attention.q_proj``). The separate query, key
    and value projections are concatenated into timm's ``qkv``; the mask
    token, pooler and classifier are dropped; a ``vit.`` prefix
    (checkpoints saved from a classification model) is removed.

    Parameters
    ----------
    state_dict : dict of `torch.Tensor`
        A transformers ViT state dict (``encoder.layer.0.attention.attention.query.weight``...).

    Returns
    -------
    state_dict : dict of `torch.Tensor`
        timm keys (``blocks.0.attn.qkv.weight``...), loadable strictly into
        ``timm.create_model("vit_base_patch16_224", num_classes=0)``.

    Raises
    ------
    astrofmtools.InputError
        For a key that is not part of a transformers ViT.

    Examples
    --------
    >>> import torch
    >>> from astrofmtools.backbones import convert_hf_vit
    >>> sd = {f"vit.encoder.layer.0.attention.attention.{p}.weight": torch.eye(2)
    ...       for p in ("query", "key", "value")}
    >>> sd["vit.layernorm.bias"] = torch.zeros(2)
    >>> out = convert_hf_vit(sd)
    >>> sorted(out), tuple(out["blocks.0.attn.qkv.weight"].shape)
    (['blocks.0.attn.qkv.weight', 'norm.bias'], (6, 2))
    """
    import torch
    from ..exceptions import InputError
    out = {}
    qkv = {}
    for key, value in state_dict.items():
        if key.startswith("vit."):
            key = key[4:]
        if key.startswith(_DROP):
            continue
        if key in _TOP:
            out[_TOP[key]] = value
            continue
        parts = key.split(".")
        if key.startswith("encoder.layer."):
            parts = parts[1:]
        if parts[0] in ("layer", "layers") and len(parts) >= 4 and parts[1].isdigit():
            i = int(parts[1])
            sub = ".".join(parts[2:-1])
            suffix = parts[-1]
            if sub in _QKV:
                qkv.setdefault((i, suffix), {})[_QKV[sub]] = value
                continue
            if sub in _BLOCK:
                out[f"blocks.{i}.{_BLOCK[sub]}.{suffix}"] = value
                continue
        raise InputError(f"Key {key!r} is not part of a Hugging Face transformers ViT "
                         "state dict.")
    for (i, suffix), parts in qkv.items():
        if set(parts) != {"query", "key", "value"}:
            raise InputError(f"Layer {i} lacks one of its query/key/value {suffix}s.")
        out[f"blocks.{i}.attn.qkv.{suffix}"] = torch.cat(
            [parts["query"], parts["key"], parts["value"]], dim=0)
    return out
