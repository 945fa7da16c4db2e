"""The dual-conditioned transformer denoiser (paper sec. 3.2, after MDM): predicts x0 from (x_t, t, condition).

Tokens: one prefix token = timestep embedding + Linear(high-level embedding) + Linear(low-level embedding), then the
motion frames projected to ``width``; sinusoidal positions on all tokens; a transformer encoder; padding masked by
length (the prefix is always visible). Each text has its own keep mask (``high_keep``/``low_keep``): training drops
each independently with probability ``cond_dropout``, so one network serves both texts, either alone, and neither
(classifier-free guidance).

Conditioning variants, for the paper's baselines: ``dual`` (ours), ``high`` (MDM: only the high-level text) and
``concat`` (MDM fed ``"high. low"`` as one text; the caller builds that text, the network sees one embedding).

Options that let imported MDM / seed (humansensinglab/MotionGPT) weights run with their original numerics
(checkpoint-interop.md sec. 2); the defaults are our own models' behaviour, unchanged:

- ``null_condition``: ``zero_projection`` (ours: a dropped text contributes 0 to the token) or ``zero_embedding``
  (MDM: the text *embedding* is zeroed before its Linear, so a dropped text contributes the Linear's bias).
- ``mask_padding``: ours masks padded frames in attention; MDM before Feb 2025 (and the seed) has no mask at all.
- ``sinusoid``: the frequency formula of the positional table. ``mdm`` computes ``exp(2i * (-ln 10000 / d))`` as
  MDM's ``PositionalEncoding`` does (float32); ours is ``exp(-ln 10000 * i / (d/2))``. Both interleave sin (even) and
  cos (odd); they are bitwise equal for widths 32, 64, 512 but not for every width (384 differs by ULPs).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..errors import MotionGPTError
from ..motion.skeleton import FEATURE_DIM, MAX_FRAMES

Conditioning = Literal["dual", "high", "concat"]
CONDITIONINGS = ("dual", "high", "concat")
NullCondition = Literal["zero_projection", "zero_embedding"]
NULL_CONDITIONS = ("zero_projection", "zero_embedding")
Sinusoid = Literal["motiongpt", "mdm"]
SINUSOIDS = ("motiongpt", "mdm")


@dataclass
class DenoiserConfig:
    """Architecture. Defaults are MDM's HumanML3D recipe (width 512, 8 layers, 4 heads, ff 1024, dropout 0.1)."""

    feature_dim: int = FEATURE_DIM
    width: int = 512
    layers: int = 8
    heads: int = 4
    ff_size: int = 1024
    dropout: float = 0.1
    max_frames: int = MAX_FRAMES
    conditioning: Conditioning = "dual"
    high_dim: int = 512
    low_dim: int = 384
    cond_dropout: float = 0.1
    null_condition: NullCondition = "zero_projection"
    mask_padding: bool = True
    sinusoid: Sinusoid = "motiongpt"

    def __post_init__(self) -> None:
        if self.conditioning not in CONDITIONINGS:
            raise MotionGPTError(f"unknown conditioning {self.conditioning!r} (choose {', '.join(CONDITIONINGS)})")
        if self.null_condition not in NULL_CONDITIONS:
            choices = ', '.join(NULL_CONDITIONS)
            raise MotionGPTError(f"unknown null_condition {self.null_condition!r} (choose {choices})")
        if self.sinusoid not in SINUSOIDS:
            raise MotionGPTError(f"unknown sinusoid {self.sinusoid!r} (choose {', '.join(SINUSOIDS)})")
        if self.width % self.heads:
            raise MotionGPTError(f"width {self.width} must be divisible by heads {self.heads}")
        for name in ("feature_dim", "width", "layers", "heads", "ff_size", "max_frames", "high_dim"):
            if getattr(self, name) < 1:
                raise MotionGPTError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.cond_dropout < 1 or not 0 <= self.dropout < 1:
            raise MotionGPTError("dropout and cond_dropout must be in [0, 1)")

    @property
    def uses_low(self) -> bool:
        return self.conditioning == "dual"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DenoiserConfig:
        """Strict on unknown keys; keys a config.json predates (``null_condition``, ...) take their defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise MotionGPTError(f"unknown denoiser settings: {', '.join(sorted(unknown))}")
        return cls(**data)


def sinusoidal_embedding(positions: torch.Tensor, dim: int, formula: Sinusoid = "motiongpt") -> torch.Tensor:
    """Transformer sinusoids (Vaswani et al. 2017): ``(...,)`` positions -> ``(..., dim)``, sin on even channels.

    ``formula="mdm"`` rounds the frequencies as MDM's ``PositionalEncoding`` table does, so row ``p`` equals its
    ``pe[p]`` bitwise (the timestep embedding is the same table's row ``t``).
    """
    half = dim // 2
    if formula == "mdm":
        steps = torch.arange(0, 2 * half, 2, device=positions.device).float()
        freqs = torch.exp(steps * (-math.log(10000.0) / dim))
    else:
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    args = positions.float()[..., None] * freqs
    emb = torch.stack([torch.sin(args), torch.cos(args)], dim=-1).flatten(-2)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[..., :1])], dim=-1)
    return emb


class MotionDenoiser(nn.Module):
    """``forward(x_t (B, N, F), t (B,), high (B, Dh), low (B, Dl) | None, mask (B, N) bool, keeps) -> x0 (B, N, F)``."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.config = config
        d = config.width
        self.input_proj = nn.Linear(config.feature_dim, d)
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.high_proj = nn.Linear(config.high_dim, d)
        self.low_proj = nn.Linear(config.low_dim, d) if config.uses_low else None
        layer = nn.TransformerEncoderLayer(
            d, config.heads, config.ff_size, config.dropout, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.output_proj = nn.Linear(d, config.feature_dim)
        self.register_buffer(
            "positions", sinusoidal_embedding(torch.arange(config.max_frames + 1), d, config.sinusoid), persistent=False
        )

    def condition(
        self,
        t: torch.Tensor,
        high: torch.Tensor,
        low: torch.Tensor | None,
        high_keep: torch.Tensor | None = None,
        low_keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The prefix token ``(B, width)``: timestep embedding + kept text projections."""
        token = self.time_mlp(sinusoidal_embedding(t, self.config.width, self.config.sinusoid))
        token = token + self._project(self.high_proj, high, high_keep)
        if self.low_proj is not None:
            if low is None:
                raise MotionGPTError("this model is dual-conditioned and needs low-level embeddings")
            token = token + self._project(self.low_proj, low, low_keep)
        return token

    def _project(self, proj: nn.Linear, emb: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        if keep is None:
            return proj(emb)
        if self.config.null_condition == "zero_embedding":  # MDM's mask_cond: Linear(0) = bias for a dropped text
            return proj(emb * keep.to(emb.dtype)[:, None])
        return proj(emb) * keep.to(emb.dtype)[:, None]

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        high: torch.Tensor,
        low: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        high_keep: torch.Tensor | None = None,
        low_keep: torch.Tensor | None = None,
        *,
        pack: bool = False,
    ) -> torch.Tensor:
        """``pack`` (training, distillation and sampling use it): when padding is masked, run the per-token layers
        (projections, feed-forward) on the unpadded tokens only; a random batch is about half padding, and a step
        is about 1.6 times faster. Valid frames get the outputs of the padded computation up to float rounding;
        padded frames get the output layer's bias (a masked loss ignores them, samplers cut them). Not the default
        of a direct call, where an imported MDM model's padded frames match the original's. With dropout, the
        random draws differ from the padded path's. Without masked padding (MDM's layout) there is nothing to pack."""
        B, N, _ = x_t.shape
        if N > self.config.max_frames:
            raise MotionGPTError(f"{N} frames exceed the model's maximum of {self.config.max_frames}")
        prefix = self.condition(t, high, low, high_keep, low_keep)[:, None, :]
        tokens = torch.cat([prefix, self.input_proj(x_t)], dim=1) + self.positions[: N + 1].to(x_t.dtype)
        padding = None
        if not self.config.mask_padding:  # MDM/seed trained without a mask: padded frames attend and are attended
            mask = None
        if mask is not None and not bool(mask.all()):  # no padding: the unmasked softmax is ~8% faster
            padding = torch.cat([torch.zeros_like(mask[:, :1]), ~mask], dim=1)  # True = ignore
        if pack and padding is not None:
            hidden = self._encode_packed(tokens, ~padding)
        else:
            hidden = self.encoder(tokens, src_key_padding_mask=padding)
        return self.output_proj(hidden[:, 1:])

    def _encode_packed(self, tokens: torch.Tensor, valid: torch.Tensor, per_clip: bool | None = None) -> torch.Tensor:
        """``self.encoder`` on the valid tokens of ``tokens (B, L, d)``: projections and feed-forward on the packed
        tokens; padded rows of the result are zeros. The attention runs clip by clip (``per_clip``, the default on
        CPU: its cost is the sum of the clips' squared lengths, not ``B L^2``) or as one batched kernel on the padded
        layout with padded keys masked (the default elsewhere: many small kernels are slow on a GPU)."""
        B, L, d = tokens.shape
        index = valid.reshape(-1).nonzero().squeeze(1)
        x = tokens.reshape(B * L, d)[index]
        if tokens.device.type == "cpu" if per_clip is None else per_clip:
            attend = functools.partial(_attend_per_clip, counts=valid.sum(1).tolist())
        else:
            attend = functools.partial(_attend_padded, index=index, valid=valid)
        for layer in self.encoder.layers:
            x = _packed_layer(layer, x, attend)
        return tokens.new_zeros(B * L, d).index_copy(0, index, x).view(B, L, d)

    def flops_per_forward(self, batch: int, frames: int) -> float:
        """Multiply-accumulate FLOPs (x2) of one forward: the matmuls (projections, attention, feed-forward)."""
        c, n, d = self.config, frames + 1, self.config.width
        per_layer = 2 * n * (4 * d * d + 2 * d * c.ff_size) + 2 * 2 * n * n * d
        io = 2 * frames * 2 * c.feature_dim * d + 2 * (2 * d * d + (c.high_dim + c.low_dim) * d)
        return float(batch * (c.layers * per_layer + io))


def _attend_per_clip(q, k, v, dropout: float, counts: list[int]) -> torch.Tensor:
    """Attention within each clip of the packed heads ``(1, h, T, e)``: a clip's tokens are contiguous in the packed
    order, ``counts`` long, and each clip attends alone, unmasked."""
    parts = zip(*(z.split(counts, dim=2) for z in (q, k, v)), strict=True)
    return torch.cat([nn.functional.scaled_dot_product_attention(*qkv, dropout_p=dropout) for qkv in parts], dim=2)


def _attend_padded(q, k, v, dropout: float, index: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The same attention as one kernel: the packed heads ``(1, h, T, e)`` placed at ``index`` in the padded layout
    that ``valid (B, L)`` describes, padded keys masked."""
    (B, L), h, e = valid.shape, q.shape[1], q.shape[-1]

    def padded(z: torch.Tensor) -> torch.Tensor:  # (1, h, T, e) -> (B, h, L, e), zeros at the padded tokens
        z = z[0].transpose(0, 1).reshape(-1, h * e)
        return z.new_zeros(B * L, h * e).index_copy(0, index, z).view(B, L, h, e).transpose(1, 2)

    out = nn.functional.scaled_dot_product_attention(padded(q), padded(k), padded(v),
                                                     attn_mask=valid[:, None, None, :], dropout_p=dropout)  # fmt: skip
    return out.transpose(1, 2).reshape(B * L, h, e)[index].transpose(0, 1)[None]


def _packed_layer(layer: nn.TransformerEncoderLayer, x: torch.Tensor, attend) -> torch.Tensor:
    """One post-norm ``TransformerEncoderLayer`` (its own weights) on packed tokens ``x (T, d)``; ``attend(q, k, v,
    dropout)`` mixes the packed heads ``(1, h, T, e)`` within each clip."""
    attn = layer.self_attn
    d, heads = x.shape[-1], attn.num_heads
    qkv = nn.functional.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = qkv.view(1, -1, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
    mixed = attend(q, k, v, attn.dropout if layer.training else 0.0)
    mixed = nn.functional.linear(mixed.transpose(1, 2).reshape(-1, d), attn.out_proj.weight, attn.out_proj.bias)
    x = layer.norm1(x + layer.dropout1(mixed))
    return layer.norm2(x + layer.dropout2(layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))))
