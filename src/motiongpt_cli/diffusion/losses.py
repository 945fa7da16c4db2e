"""Training losses, paper eq. (2)-(6), masked by length.

``L = L_rec + lambda_pos L_pos + lambda_vel L_vel + lambda_foot L_foot`` where ``L_rec`` is the x0 MSE on the
normalised features, and the geometric terms work on joints recovered from the de-normalised x0 through the
differentiable ``features_to_joints`` (the ``FK`` of eq. 3-5): positions, frame-to-frame joint velocities, and the
predicted velocity of the foot joints on frames where the ground truth's contact channels (259-262) say the foot is
planted. Joints are in metres, so the geometric terms are in m^2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..motion.features import FOOT_CONTACTS, features_to_joints
from ..motion.skeleton import FOOT_LEFT, FOOT_RIGHT

# HumanML3D's contact channels are (left ankle, left foot, right ankle, right foot)
_CONTACT_JOINTS = list(FOOT_LEFT + FOOT_RIGHT)


@dataclass
class LossWeights:
    pos: float = 1.0
    vel: float = 1.0
    foot: float = 1.0


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample mean of ``values (B, N, ...)`` over the frames where ``mask (B, N)`` holds (and all trailing dims),
    then the mean over the batch.

    Averaging per sample first (as MDM does) makes the loss of a batch the mean of its samples' losses, so DDP's
    gradient average over equal per-rank batches equals the gradient of one process on the whole global batch.
    """
    per_frame = values.flatten(2).mean(-1) if values.dim() > 2 else values
    weight = mask.to(per_frame.dtype)
    per_sample = (per_frame * weight).sum(1) / weight.sum(1).clamp(min=1)
    return per_sample.mean()


def diffusion_loss(
    x0_pred: torch.Tensor,
    x0: torch.Tensor,
    mask: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    weights: LossWeights | None = None,
) -> dict[str, torch.Tensor]:
    """Losses for normalised ``x0_pred``/``x0`` ``(B, N, 263)`` and ``mask (B, N)``; returns each term and ``total``."""
    weights = weights or LossWeights()
    rec = _masked_mean((x0_pred - x0) ** 2, mask)  # eq. 2
    terms = {"rec": rec}
    total = rec
    if weights.pos or weights.vel or weights.foot:
        pred_raw = x0_pred * std + mean
        true_raw = x0 * std + mean
        joints_pred = features_to_joints(pred_raw)  # (B, N, 22, 3)
        joints_true = features_to_joints(true_raw)
        terms["pos"] = _masked_mean((joints_pred - joints_true) ** 2, mask)  # eq. 3
        pair_mask = mask[:, 1:] & mask[:, :-1]
        vel_pred = joints_pred[:, 1:] - joints_pred[:, :-1]
        vel_true = joints_true[:, 1:] - joints_true[:, :-1]
        terms["vel"] = _masked_mean((vel_pred - vel_true) ** 2, pair_mask)  # eq. 4
        contact = (true_raw[:, :-1, FOOT_CONTACTS] > 0.5).to(x0.dtype)  # (B, N-1, 4): f_i of eq. 5
        foot_vel = vel_pred[:, :, _CONTACT_JOINTS]  # (B, N-1, 4, 3)
        terms["foot"] = _masked_mean((foot_vel * contact[..., None]) ** 2, pair_mask)  # eq. 5
        total = total + weights.pos * terms["pos"] + weights.vel * terms["vel"] + weights.foot * terms["foot"]
    terms["total"] = total  # eq. 6
    return terms
