"""Batched rotation conversions in torch, with thin numpy entry points.

Conventions (fixed here for the whole package):

- Quaternions are ``(..., 4)`` in **(w, x, y, z)** order, unit length, Hamilton product.
- Rotation matrices ``(..., 3, 3)`` act on column vectors: ``v' = R @ v``.
- Continuous 6D (``cont6d``) is HumanML3D's: the first two **columns** of R, ``[R00, R10, R20, R01, R11, R21]``.
  pytorch3d (and MDM's copy of it) uses the first two ROWS, i.e. the 6D of R transposed; do not mix them.
- Axis-angle is ``(..., 3)``: unit axis times angle in radians.
- Euler angles ``(..., 3)`` in radians with an ``order`` string of three axes, e.g. ``"ZYX"``: the angles are about
  those axes in that order and ``R = R_order[0](a0) @ R_order[1](a1) @ R_order[2](a2)`` (intrinsic rotations; the
  BVH meaning of a channel list "Zrotation Yrotation Xrotation"). All 12 Tait-Bryan and proper-Euler orders work.

Every function accepts any leading batch shape and keeps the input dtype and device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

_AXIS = {"X": 0, "Y": 1, "Z": 2}
_EPS = 1e-8


def _normalize(v: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(eps)


# ----------------------------------------------------------------------------------------------- quaternions
def quat_normalize(q: torch.Tensor) -> torch.Tensor:
    return _normalize(q)


def quat_conjugate(q: torch.Tensor) -> torch.Tensor:
    """Inverse of a unit quaternion: negate the vector part."""
    return torch.cat([q[..., :1], -q[..., 1:]], dim=-1)


quat_inverse = quat_conjugate


def quat_mul(q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``q ⊗ r`` (apply r first, then q)."""
    w1, x1, y1, z1 = q.unbind(-1)
    w2, x2, y2, z2 = r.unbind(-1)
    return torch.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        dim=-1,
    )


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors ``v: (..., 3)`` by unit quaternions ``q: (..., 4)`` (broadcasting)."""
    q, v = torch.broadcast_tensors(q, torch.cat([v[..., :1], v], dim=-1))
    v = v[..., 1:]
    qv = q[..., 1:]
    w = q[..., :1]
    uv = torch.cross(qv, v, dim=-1)
    uuv = torch.cross(qv, uv, dim=-1)
    return v + 2.0 * (w * uv + uuv)


def quat_between(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Minimal rotation taking direction ``a`` to ``b`` (HumanML3D's ``qbetween``).

    Vector part ``a × b``, scalar ``|a||b| + a·b``, then normalised, so ``w >= 0`` always. Undefined for
    exactly antiparallel inputs, as in the original.
    """
    a, b = torch.broadcast_tensors(a, b)
    v = torch.cross(a, b, dim=-1)
    w = (a.norm(dim=-1) * b.norm(dim=-1) + (a * b).sum(-1)).unsqueeze(-1)
    return _normalize(torch.cat([w, v], dim=-1))


def quat_fix(q: torch.Tensor) -> torch.Tensor:
    """Flip signs along time (dim 0 of ``(T, ..., 4)``) so consecutive quaternions have a positive dot product."""
    if q.shape[0] < 2:
        return q.clone()
    dots = (q[1:] * q[:-1]).sum(-1)
    flips = (dots < 0).to(torch.int64).cumsum(0) % 2
    sign = torch.cat([torch.zeros_like(flips[:1]), flips], dim=0)
    return q * (1 - 2 * sign).unsqueeze(-1).to(q.dtype)


def quat_slerp(q0: torch.Tensor, q1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation along the shorter arc; ``t`` broadcasts against ``q[..., 0]``."""
    t = torch.as_tensor(t, dtype=q0.dtype, device=q0.device)
    dot = (q0 * q1).sum(-1)
    q1 = torch.where((dot < 0).unsqueeze(-1), -q1, q1)
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    sin_theta = torch.sin(theta)
    small = sin_theta < 1e-6
    safe = torch.where(small, torch.ones_like(sin_theta), sin_theta)
    w0 = torch.where(small, 1.0 - t, torch.sin((1.0 - t) * theta) / safe)
    w1 = torch.where(small, t, torch.sin(t * theta) / safe)
    return _normalize(w0.unsqueeze(-1) * q0 + w1.unsqueeze(-1) * q1)


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    q = _normalize(q)
    w, x, y, z = q.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    m = torch.stack(
        [
            1 - 2 * (yy + zz),
            2 * (xy - wz),
            2 * (xz + wy),
            2 * (xy + wz),
            1 - 2 * (xx + zz),
            2 * (yz - wx),
            2 * (xz - wy),
            2 * (yz + wx),
            1 - 2 * (xx + yy),
        ],
        dim=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrix to a unit quaternion with ``w >= 0`` (Shepperd's method: pick the best-conditioned pivot)."""
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4·(w², x², y², z²) from the diagonal; the largest gives a numerically safe division.
    diag = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1)
    r = torch.sqrt(diag.clamp_min(0.0)).clamp_min(_EPS)  # 2·|component|
    cand = torch.stack(
        [
            torch.stack([r[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], dim=-1) / (2 * r[..., :1]),
            torch.stack([m21 - m12, r[..., 1] ** 2, m01 + m10, m02 + m20], dim=-1) / (2 * r[..., 1:2]),
            torch.stack([m02 - m20, m01 + m10, r[..., 2] ** 2, m12 + m21], dim=-1) / (2 * r[..., 2:3]),
            torch.stack([m10 - m01, m02 + m20, m12 + m21, r[..., 3] ** 2], dim=-1) / (2 * r[..., 3:4]),
        ],
        dim=-2,
    )
    best = diag.argmax(dim=-1)
    q = torch.gather(cand, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = _normalize(q)
    return torch.where(q[..., :1] < 0, -q, q)


# ----------------------------------------------------------------------------------------------- 6D
def matrix_to_cont6d(m: torch.Tensor) -> torch.Tensor:
    """First two columns of R: ``[R00, R10, R20, R01, R11, R21]`` (HumanML3D's layout)."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)


def cont6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Gram-Schmidt back to a rotation with columns ``[x, y, z]``: x = n(a), z = n(x × b), y = z × x."""
    x = _normalize(d6[..., :3])
    z = _normalize(torch.cross(x, d6[..., 3:6], dim=-1))
    y = torch.cross(z, x, dim=-1)
    return torch.stack([x, y, z], dim=-1)


def quat_to_cont6d(q: torch.Tensor) -> torch.Tensor:
    return matrix_to_cont6d(quat_to_matrix(q))


def cont6d_to_quat(d6: torch.Tensor) -> torch.Tensor:
    return matrix_to_quat(cont6d_to_matrix(d6))


# ----------------------------------------------------------------------------------------------- axis-angle
def axis_angle_to_quat(aa: torch.Tensor) -> torch.Tensor:
    angle = aa.norm(dim=-1, keepdim=True)
    half = 0.5 * angle
    small = angle < 1e-6
    # sin(θ/2)/θ -> 1/2 - θ²/48 near zero
    k = torch.where(small, 0.5 - angle**2 / 48.0, torch.sin(half) / torch.where(small, torch.ones_like(angle), angle))
    return torch.cat([torch.cos(half), aa * k], dim=-1)


def quat_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """Axis-angle with angle in [0, π]."""
    q = _normalize(q)
    q = torch.where(q[..., :1] < 0, -q, q)
    v = q[..., 1:]
    s = v.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(s, q[..., :1])
    small = s < 1e-6
    k = torch.where(small, 2.0 / q[..., :1].clamp_min(_EPS), angle / torch.where(small, torch.ones_like(s), s))
    return v * k


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    return quat_to_matrix(axis_angle_to_quat(aa))


def matrix_to_axis_angle(m: torch.Tensor) -> torch.Tensor:
    return quat_to_axis_angle(matrix_to_quat(m))


# ----------------------------------------------------------------------------------------------- Euler
def _check_order(order: str) -> tuple[int, int, int]:
    order = order.upper()
    if len(order) != 3 or any(c not in _AXIS for c in order) or order[0] == order[1] or order[1] == order[2]:
        raise ValueError(f"invalid Euler order {order!r}: three of X/Y/Z with no axis twice in a row")
    return _AXIS[order[0]], _AXIS[order[1]], _AXIS[order[2]]


def _axis_matrix(axis: int, angle: torch.Tensor) -> torch.Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    if axis == 0:
        rows = [one, zero, zero, zero, c, -s, zero, s, c]
    elif axis == 1:
        rows = [c, zero, s, zero, one, zero, -s, zero, c]
    else:
        rows = [c, -s, zero, s, c, zero, zero, zero, one]
    return torch.stack(rows, dim=-1).reshape(angle.shape + (3, 3))


def euler_to_matrix(angles: torch.Tensor, order: str = "ZYX") -> torch.Tensor:
    """``R = R_order[0](a0) @ R_order[1](a1) @ R_order[2](a2)``; angles in radians."""
    axes = _check_order(order)
    mats = [_axis_matrix(ax, angles[..., n]) for n, ax in enumerate(axes)]
    return mats[0] @ mats[1] @ mats[2]


def matrix_to_euler(m: torch.Tensor, order: str = "ZYX") -> torch.Tensor:
    """Inverse of :func:`euler_to_matrix`.

    Tait-Bryan orders give the middle angle in [-π/2, π/2], proper-Euler orders in [0, π]; the others in (-π, π].
    At gimbal lock the last angle is set to 0.
    """
    i, j, k = _check_order(order)
    proper = i == k
    if proper:
        k = 3 - i - j
    # parity of the permutation (i, j, k): +1 even, -1 odd
    s = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    r = m
    if proper:
        sb = torch.sqrt(r[..., i, j] ** 2 + r[..., i, k] ** 2)
        b = torch.atan2(sb, r[..., i, i])
        a = torch.atan2(r[..., j, i], -s * r[..., k, i])
        c = torch.atan2(r[..., i, j], s * r[..., i, k])
        cb = sb
    else:
        cb = torch.sqrt(r[..., i, i] ** 2 + r[..., i, j] ** 2)
        b = torch.atan2(s * r[..., i, k], cb)
        a = torch.atan2(-s * r[..., j, k], r[..., k, k])
        c = torch.atan2(-s * r[..., i, j], r[..., i, i])
    gimbal = cb < 1e-8  # ~sqrt(machine eps): the error is about this size on either side of the switch
    a_g = torch.atan2(s * r[..., k, j], r[..., j, j])
    a = torch.where(gimbal, a_g, a)
    c = torch.where(gimbal, torch.zeros_like(c), c)
    return torch.stack([a, b, c], dim=-1)


def unwrap_angles(angles: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Remove 2π jumps along ``dim`` (e.g. Euler angles over time), like ``numpy.unwrap``."""
    d = torch.diff(angles, dim=dim)
    d_mod = torch.remainder(d + torch.pi, 2 * torch.pi) - torch.pi
    d_mod = torch.where((d_mod == -torch.pi) & (d > 0), torch.full_like(d_mod, torch.pi), d_mod)
    correction = (d_mod - d).cumsum(dim)
    first = angles.narrow(dim, 0, 1)
    rest = angles.narrow(dim, 1, angles.shape[dim] - 1) + correction
    return torch.cat([first, rest], dim=dim)


# ----------------------------------------------------------------------------------------------- numpy
def numpy_call(fn: Callable[..., torch.Tensor], *arrays: Any, **kwargs: Any) -> np.ndarray:
    """Call a torch function of this module on numpy arrays in float64 and return a numpy array.

    ``numpy_call(quat_to_matrix, q)`` is the numpy entry point to any conversion; the result is float64.
    """
    tensors = [torch.as_tensor(np.asarray(a, dtype=np.float64)) for a in arrays]
    with torch.no_grad():
        return fn(*tensors, **kwargs).numpy()
