"""CLIP text features exactly as MDM and the seed compute them (checkpoint-interop.md sec. 3.1-3.2).

MDM: OpenAI ViT-B/32 with QuickGELU (open_clip ``ViT-B-32-quickgelu``; plain ``ViT-B-32`` silently uses exact GELU),
tokens truncated to a context of 22 (the seed: 42) with the EOT overwrite, zero-padded to 77, the mixed-fp16 recipe
(fp16 Linear/attention weights, fp32 LayerNorms and embeddings; open_clip ``precision="fp16"`` is bitwise equal on
CPU), and the projected EOT feature **not** L2-normalised (MDM feeds the raw feature to its Linear). ``fp32`` is an
option; it differs from fp16 by ~1e-3 relative.

Encoder names: ``clip:<arch>/<pretrained>@ctx<N>,<fp16|fp32>,raw``, e.g.
``clip:ViT-B-32-quickgelu/openai@ctx22,fp16,raw`` (:func:`clip_encoder_name`). The registry in :mod:`.encoders`
should dispatch such names here (see :func:`is_original_clip_name`). Weights, in order: a ``clip.safetensors`` in
the model directory (the checkpoint's own ``clip_model.*`` text tower), a file given by the caller (safetensors or an
open_clip state dict), else open_clip's download of ``<pretrained>``; offline without weights ->
:class:`EncoderUnavailableError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import MotionGPTError
from .encoders import EmbeddingCache, EncoderUnavailableError, TextEncoder

Precision = Literal["fp16", "fp32"]
FULL_CONTEXT = 77
_NAME = re.compile(r"^clip:(?P<arch>[^/@]+)/(?P<pretrained>[^/@]+)@ctx(?P<ctx>\d+),(?P<prec>fp16|fp32),raw$")


@dataclass(frozen=True)
class ClipRecipe:
    arch: str
    pretrained: str
    context_length: int
    precision: Precision


def clip_encoder_name(arch_pretrained: str, *, context_length: int = FULL_CONTEXT,
                      precision: Precision = "fp16") -> str:  # fmt: skip
    """``"ViT-B-32-quickgelu/openai"``, 22, fp16 -> ``"clip:ViT-B-32-quickgelu/openai@ctx22,fp16,raw"``."""
    name = f"clip:{arch_pretrained}@ctx{int(context_length)},{precision},raw"
    parse_clip_name(name)
    return name


def is_original_clip_name(name: str) -> bool:
    return name.startswith("clip:") and "@" in name


def parse_clip_name(name: str) -> ClipRecipe:
    m = _NAME.match(name.strip())
    if not m:
        raise MotionGPTError(f"CLIP encoder name {name!r} must be clip:<arch>/<pretrained>@ctx<N>,<fp16|fp32>,raw",
                             hint="e.g. clip:ViT-B-32-quickgelu/openai@ctx22,fp16,raw")  # fmt: skip
    ctx = int(m["ctx"])
    if not 3 <= ctx <= FULL_CONTEXT:
        raise MotionGPTError(f"CLIP context length must be in [3, {FULL_CONTEXT}], got {ctx}")
    return ClipRecipe(m["arch"], m["pretrained"], ctx, m["prec"])  # type: ignore[arg-type]


def tokenize(texts: Sequence[str], context_length: int):
    """int64 ``(N, 77)``: open_clip's tokens at ``context_length`` (SOT + text, the last kept position overwritten
    by EOT when truncated; identical ids to OpenAI's ``clip.tokenize(..., truncate=True)``), zero-padded to 77."""
    import open_clip
    import torch

    tokens = open_clip.tokenize(list(texts), context_length=context_length).long()
    pad = torch.zeros(tokens.shape[0], FULL_CONTEXT - context_length, dtype=tokens.dtype)
    return torch.cat([tokens, pad], dim=1)


def build_text_model(recipe: ClipRecipe, weights: dict | None = None):
    """The open_clip model with ``weights`` (a CLIP state dict; only the text tower is needed) or the pretrained
    download; fp16 precision converts the same tensors as OpenAI's ``convert_weights``."""
    import logging

    import open_clip
    import torch

    if recipe.arch not in open_clip.list_models():
        raise EncoderUnavailableError(f"open_clip has no architecture {recipe.arch!r}",
                                      hint="MDM's CLIP is ViT-B-32-quickgelu")  # fmt: skip
    precision = "fp16" if recipe.precision == "fp16" else "fp32"
    if weights is None:
        try:
            model = open_clip.create_model(recipe.arch, pretrained=recipe.pretrained, precision=precision)
        except Exception as exc:
            raise EncoderUnavailableError(
                f"CLIP weights {recipe.arch}/{recipe.pretrained} are not available here "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})",
                hint="import a checkpoint that carries clip_model.*, or run once with network so open_clip caches "
                "the weights (Hugging Face hub), or give the weights file",
            ) from None
        return model.eval()
    root = logging.getLogger()
    was, root.disabled = root.disabled, True  # "initialized randomly" is expected: the weights follow
    try:
        with torch.random.fork_rng(devices=[]):
            model = open_clip.create_model(recipe.arch, pretrained=None, precision=precision)
    finally:
        root.disabled = was
    result = model.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("visual.")]
    unexpected = [k for k in result.unexpected_keys if not k.startswith("visual.")]
    if missing or unexpected:
        raise EncoderUnavailableError(f"CLIP weights do not fit {recipe.arch}: missing {missing[:4]}, "
                                      f"unexpected {unexpected[:4]}")  # fmt: skip
    return model.eval()


def read_weights(path: Path) -> dict:
    """A CLIP state dict from ``.safetensors`` or an open_clip ``.pt``/``.bin`` (read with ``weights_only``)."""
    import torch

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EncoderUnavailableError(f"cannot read CLIP weights {path}: {str(exc).splitlines()[0][:160]}",
                                      hint="OpenAI's TorchScript ViT-B-32.pt is not read yet; use an open_clip "
                                      "state dict or safetensors file") from None  # fmt: skip
    obj = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not isinstance(obj, dict):
        raise EncoderUnavailableError(f"{path}: not a CLIP state dict")
    return {k.removeprefix("module."): v for k, v in obj.items()}


class OriginalClipTextEncoder(TextEncoder):
    """CLIP text features with the original recipe; rows are *not* L2-normalised (unlike :class:`TextEncoder`)."""

    batch_size = 64

    def __init__(self, name: str, model, recipe: ClipRecipe, *, device: str = "cpu",
                 cache: EmbeddingCache | None = None) -> None:  # fmt: skip
        self.model = model.to(device).eval()
        self.recipe = recipe
        self.device = device
        super().__init__(name, int(self.model.text_projection.shape[-1]), cache=cache)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.no_grad():
            tokens = tokenize(texts, self.recipe.context_length).to(self.device)
            return self.model.encode_text(tokens).float().cpu().numpy()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        cached = self.cache.get_many(self.name, texts) if self.cache is not None and texts else {}
        todo = sorted({t for t in texts if t not in cached})
        fresh: dict[str, np.ndarray] = {}
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            fresh.update(zip(chunk, np.asarray(self._encode_batch(chunk), dtype=np.float32), strict=True))
        if self.cache is not None and fresh:
            self.cache.put_many(self.name, fresh)
        for i, text in enumerate(texts):
            out[i] = cached[text] if text in cached else fresh[text]
        return out


def load_clip_encoder(name: str, *, weights: Path | None = None, device: str = "cpu",
                      cache_dir: Path | None = None) -> OriginalClipTextEncoder:  # fmt: skip
    """The encoder ``name`` (see the module docstring); ``weights``: a CLIP weights file (model dir's
    ``clip.safetensors`` or a user file), else the pretrained download."""
    recipe = parse_clip_name(name)
    state = read_weights(weights) if weights is not None else None
    model = build_text_model(recipe, state)
    cache = EmbeddingCache(Path(cache_dir) / "embeddings.sqlite") if cache_dir is not None else None
    return OriginalClipTextEncoder(name, model, recipe, device=device, cache=cache)
