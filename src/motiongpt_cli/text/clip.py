"""CLIP text features exactly as MDM and the seed compute them (checkpoint-interop.md sec. 3.1-3.2).

MDM: OpenAI ViT-B/32 with QuickGELU (open_clip ``ViT-B-32-quickgelu``; plain ``ViT-B-32`` silently uses exact GELU),
tokens truncated to a context of 22 (the seed: 42) with the EOT overwrite, zero-padded to 77, the mixed-fp16 recipe
(fp16 Linear/attention weights, fp32 LayerNorms and embeddings; open_clip ``precision="fp16"`` is bitwise equal on
CPU), and the projected EOT feature **not** L2-normalised (MDM feeds the raw feature to its Linear). ``fp32`` is an
option; it differs from fp16 by ~1e-3 relative.

Encoder names: ``clip:<arch>/<pretrained>@ctx<N>,<fp16|fp32>,raw``, e.g.
``clip:ViT-B-32-quickgelu/openai@ctx22,fp16,raw`` (:func:`clip_encoder_name`); :func:`.encoders.load_encoder`
sends every name with ``@`` here. Weights, in order: the model directory's ``high_weights`` file (the checkpoint's
own ``clip_model.*`` text tower, or the ``--clip`` file given to ``motiongpt model import``, kept as
``clip.safetensors``), else a ``clip.safetensors`` put in the model directory by hand (OpenAI's or open_clip's
state dict as safetensors, a ``torch.save``d state dict, or OpenAI's TorchScript ``ViT-B-32.pt``, all read without
running code: :mod:`.clip_weights`), else open_clip's download of ``<pretrained>`` (or its Hugging Face cache);
offline without any of them -> :class:`EncoderUnavailableError` naming the file to get and where it goes.

Embeddings are cached under the name plus the weights' identity (``sha256:`` of the file, or ``open_clip:openai``),
so features of different weights never mix. The model (and open_clip) loads on the first text the cache misses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import MotionGPTError
from .encoder_weights import EncoderUnavailableError, check_clip_architecture, file_sha256
from .encoders import TextEncoder

Precision = Literal["fp16", "fp32"]
FULL_CONTEXT = 77
CLIP_FILE = "clip.safetensors"  # a model directory's CLIP weights
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


def build_text_model(recipe: ClipRecipe, weights: dict | None = None, *, model_dir: Path | None = None):
    """The open_clip model with ``weights`` (a CLIP state dict; only the text tower is needed) or the pretrained
    download; fp16 precision converts the same tensors as OpenAI's ``convert_weights``. ``model_dir``: where the
    offline error tells the user to put the weights."""
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
            raise _unavailable(recipe, model_dir, exc) from None
        return model.eval()
    root = logging.getLogger()
    was, root.disabled = root.disabled, True  # "initialized randomly" is expected: the weights follow
    try:
        with torch.random.fork_rng(devices=[]):
            model = open_clip.create_model(recipe.arch, pretrained=None, precision=precision)
    finally:
        root.disabled = was
    # load_state_dict copies into the model's own dtypes: fp16 weights stay exact, fp32 ones round as
    # convert_weights would; the visual tower and logit_scale are not used by encode_text
    result = model.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("visual.") and k != "logit_scale"]
    unexpected = [k for k in result.unexpected_keys if not k.startswith("visual.")]
    if missing or unexpected:
        raise EncoderUnavailableError(f"CLIP weights do not fit {recipe.arch}: missing {missing[:4]}, "
                                      f"unexpected {unexpected[:4]}")  # fmt: skip
    model.visual = None  # about 88M parameters encode_text never touches
    return model.eval()


def _unavailable(recipe: ClipRecipe, model_dir: Path | None, exc: Exception) -> EncoderUnavailableError:
    """The one line for "no CLIP weights here": which file to get and where it goes."""
    import open_clip

    hub = (open_clip.get_pretrained_cfg(recipe.arch, recipe.pretrained) or {}).get("hf_hub", "").rstrip("/")
    source = f"open_clip_model.safetensors from huggingface.co/{hub}" if hub else f"{recipe.pretrained}'s file"
    where = f"save it as {Path(model_dir) / CLIP_FILE}" if model_dir is not None else "pass its path as the weights"
    return EncoderUnavailableError(
        f"CLIP {recipe.arch}/{recipe.pretrained} weights are not available offline: get {source} and {where}",
        hint=f"or run once with network (open_clip caches the download; it said {type(exc).__name__}); a checkpoint "
        "that carries clip_model.* brings its own CLIP through `motiongpt model import`",
    )


def read_weights(path: Path, arch: str = "ViT-B-32-quickgelu") -> dict:
    """The CLIP text tower of a weights file: safetensors, a ``torch.save``d state dict (``weights_only``) or
    OpenAI's TorchScript ``ViT-B-32.pt``, by content; nothing in the file runs (:mod:`.clip_weights`)."""
    from .clip_weights import read_clip_state, text_tower

    return text_tower(read_clip_state(path), arch, str(path))


class OriginalClipTextEncoder(TextEncoder):
    """CLIP text features with the original recipe; rows are *not* L2-normalised (unlike the other encoders).

    ``weights``: a CLIP weights file, else open_clip's download of the recipe's pretrained tag. Nothing is read
    and open_clip is not imported until the first text the cache does not know (the weights file is hashed then,
    once per file: :func:`.encoder_weights.file_sha256`)."""

    batch_size = 64

    def __init__(self, name: str, recipe: ClipRecipe | None = None, *, weights: Path | None = None,
                 device: str = "cpu", model_dir: Path | None = None) -> None:  # fmt: skip
        self.recipe = recipe or parse_clip_name(name)
        dim = check_clip_architecture(self.recipe.arch).get("embed_dim")
        super().__init__(name, int(dim) if dim else None)
        self.weights = Path(weights) if weights is not None else None
        self.device = device
        self.model_dir = model_dir
        self.model = None
        self._cache_key: str | None = None

    @property
    def cache_key(self) -> str:
        if self._cache_key is None:
            if self.weights is not None:
                identity = f"sha256:{file_sha256(self.weights, self.cache)}"
            else:
                identity = f"open_clip:{self.recipe.pretrained}"
            self._cache_key = f"{self.name}|{identity}"
        return self._cache_key

    def _load(self) -> int:
        state = read_weights(self.weights, self.recipe.arch) if self.weights is not None else None
        self.model = build_text_model(self.recipe, state, model_dir=self.model_dir).to(self.device)
        return int(self.model.text_projection.shape[-1])

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.no_grad():
            tokens = tokenize(texts, self.recipe.context_length).to(self.device)
            return self.model.encode_text(tokens).float().cpu().numpy()
