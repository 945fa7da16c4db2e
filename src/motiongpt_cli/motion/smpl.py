"""SMPL pose parameters from 22 HumanML3D joints, analytically: no optimisation, and no model file unless asked.

Conventions (../shared/reference/smpl-output.md §2, §4, §5):

- Joints ``(frames, 22, 3)`` in HumanML3D order, which is SMPL's joints 0-21, metres. HumanML3D's frame has SMPL's
  own axes (Y up, +Z forward, +X the body's left), so joints go in as they are and an upright body facing +Z gets
  ``global_orient`` near zero.
- Axis-angle ``(..., 3)``: unit axis times angle in radians. ``body_pose[:, i]`` is SMPL joint ``i + 1`` relative
  to its parent; the hands (SMPL 22, 23) and the leaves (feet, head, wrists) are the identity: 22 joints say
  nothing about their own twist.
- ``transl`` is SMPL's: the posed pelvis is ``J0 + transl``, because SMPL's root rotates about the rest pelvis J0
  (so ``transl = pelvis - J0``, not the pelvis itself).
- Continuity over time: of the equivalent vectors ``(θ + 2πk)·axis`` the least-moving sequence is kept
  (:func:`continuous_axis_angle`), so facing backwards or turning round makes no 2π jumps; magnitudes may exceed
  π, which every Rodrigues-based reader (smplx included) accepts.

The default rest skeleton is SMPL's neutral body at betas 0 (:data:`SMPL_NEUTRAL_REST_JOINTS`). With a user's own
model (:func:`load_smpl_model`) the skeleton is that model's, and ``fit_shape`` fits its betas to the clip's bone
lengths. On HumanML3D-proportioned joints the neutral skeleton reproduces positions to about 17 mm MPJPE, all of
it from bone lengths (HumanML3D's differ from SMPL's by -10% to +37%), none from the solver.
"""

from __future__ import annotations

import contextlib
import io
import pickle
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidValueError, MotionFormatError
from . import rotations as rot
from .ik import solve_world_rotations, world_to_local_rotations
from .kinematics import tree_forward_kinematics
from .skeleton import PARENTS

SMPL_PARENTS: tuple[int, ...] = PARENTS + (20, 21)  # + left_hand, right_hand
# Kabsch-solved joints: pelvis (hips, spine1) and spine3 (neck, collars)
_RIGID = {0: (1, 2, 3), 9: (12, 13, 14)}

# SMPL neutral rest joints 0-21 at betas 0, metres, SMPL axes: read from Murrol/StableMotion (MIT)
# smpl_neutral_nobetas_24J.npz; MoMask's template.bvh, MotionGPT's HybrIK port and PHC agree (reference doc §5).
SMPL_NEUTRAL_REST_JOINTS = np.array(
    [
        [-0.00179506, -0.22333343, 0.02821913],  # pelvis
        [0.06772467, -0.31473967, 0.02140379],  # left_hip
        [-0.06946554, -0.31385510, 0.02389930],  # right_hip
        [-0.00432793, -0.11437022, 0.00152281],  # spine1
        [0.10200122, -0.68993830, 0.01690799],  # left_knee
        [-0.10775559, -0.69642410, 0.01504928],  # right_knee
        [0.00115911, 0.02081021, 0.00261528],  # spine2
        [0.08840552, -1.08789870, -0.02678534],  # left_ankle
        [-0.09198183, -1.09483890, -0.02726252],  # right_ankle
        [0.00261611, 0.07373245, 0.02803985],  # spine3
        [0.11476366, -1.14368960, 0.09250306],  # left_foot
        [-0.11735357, -1.14298270, 0.09608543],  # right_foot
        [-0.00016229, 0.28760280, -0.01481718],  # neck
        [0.08146084, 0.19548175, -0.00604975],  # left_collar
        [-0.07914308, 0.19256528, -0.01057543],  # right_collar
        [0.00498956, 0.35257240, 0.03653179],  # head
        [0.17243777, 0.22595066, -0.01491791],  # left_shoulder
        [-0.17515546, 0.22511646, -0.01971850],  # right_shoulder
        [0.43205002, 0.21317856, -0.04237434],  # left_elbow
        [-0.42889744, 0.21178724, -0.04111948],  # right_elbow
        [0.68128365, 0.22216462, -0.04354525],  # left_wrist
        [-0.68419546, 0.21955952, -0.04667868],  # right_wrist
    ]
)
SMPL_NEUTRAL_REST_JOINTS.setflags(write=False)


@dataclass(frozen=True)
class SMPLParams:
    """SMPL parameters of a clip: ``global_orient (T, 3)``, ``body_pose (T, 23, 3)`` axis-angle and ``transl
    (T, 3)`` metres, float32; ``rest_joints (22, 3)`` float64, the rest skeleton they pose; ``betas (B,)``
    float32, or None when the skeleton was given as joints rather than as a point of a model's shape space."""

    global_orient: np.ndarray
    body_pose: np.ndarray
    transl: np.ndarray
    rest_joints: np.ndarray
    betas: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.transl.shape[0])

    @property
    def poses(self) -> np.ndarray:
        """``(T, 72)``: global_orient then the 23 body joints, the SMPL ``pose`` layout."""
        return np.concatenate([self.global_orient, self.body_pose.reshape(self.num_frames, 69)], axis=1)


def joints_to_smpl(
    joints: np.ndarray,
    rest_joints: np.ndarray | None = None,
    *,
    model: SMPLModel | None = None,
    fit_shape: bool = False,
) -> SMPLParams:
    """Solve SMPL parameters whose forward kinematics reproduce ``joints: (frames, 22, 3)`` (metres, Y up).

    The skeleton: ``rest_joints (22 or 24, 3)`` in SMPL axes, or a ``model``'s joints at betas 0, or (``fit_shape``,
    which needs ``model``) at the betas fitted to the clip's bone lengths by :func:`fit_betas`; by default
    :data:`SMPL_NEUTRAL_REST_JOINTS` with betas 0. Pelvis and spine3 by a Kabsch fit of their three children, the
    other bones by the minimal rotation from the rest bone to the target, each anchored where FK put its joint
    (:func:`.ik.solve_world_rotations`).
    """
    x = _check_joints(joints)
    if model is not None and rest_joints is not None:
        raise InvalidValueError("give rest_joints or model, not both")
    if fit_shape and model is None:
        raise InvalidValueError("fit_shape needs an SMPL model", hint="load one with load_smpl_model(path)")
    if model is not None:
        betas = fit_betas(x, model) if fit_shape else np.zeros(model.num_betas)
        rest = model.rest_joints(betas)[:22]
    elif rest_joints is None:
        betas, rest = np.zeros(10), np.array(SMPL_NEUTRAL_REST_JOINTS)
    else:
        betas, rest = None, _check_rest_joints(rest_joints)
    offsets = rest - rest[[max(p, 0) for p in PARENTS]]
    world = solve_world_rotations(x, offsets, PARENTS, _RIGID, anchor="fk")
    local = world_to_local_rotations(world, PARENTS)
    axis_angle = continuous_axis_angle(rot.numpy_call(rot.matrix_to_axis_angle, local))
    body_pose = np.zeros((x.shape[0], 23, 3), dtype=np.float32)
    body_pose[:, :21] = axis_angle[:, 1:]
    return SMPLParams(
        global_orient=axis_angle[:, 0].astype(np.float32),
        body_pose=body_pose,
        transl=(x[:, 0] - rest[0]).astype(np.float32),
        rest_joints=rest,
        betas=None if betas is None else betas.astype(np.float32),
    )


def smpl_to_joints(params: SMPLParams) -> np.ndarray:
    """SMPL forward kinematics of the 22 body joints ``(T, 22, 3)`` float64 on ``params.rest_joints`` (the
    joints smplx returns for these parameters, without building a mesh)."""
    rest = params.rest_joints
    local = rot.numpy_call(
        rot.axis_angle_to_matrix, np.concatenate([params.global_orient[:, None], params.body_pose[:, :21]], axis=1)
    )
    offsets = rest - rest[[max(p, 0) for p in PARENTS]]
    translations = np.broadcast_to(offsets, local.shape[:2] + (3,)).copy()
    translations[:, 0] = rest[0] + params.transl
    return tree_forward_kinematics(local, translations, PARENTS)[0]


def fit_betas(joints: np.ndarray, model: SMPLModel, *, iterations: int = 20) -> np.ndarray:
    """Betas ``(B,)`` float64 whose rest skeleton has the bone lengths of ``joints: (frames, 22, 3)`` (per-bone
    median over frames), in the least-squares sense.

    The rest joints are linear in betas, ``J(β) = J_regressor (v_template + shapedirs β)``, so each bone vector is
    ``b0 + Dβ`` and its length is fitted by Gauss-Newton: a linear least-squares step per iteration (converges in
    a few). Nothing bounds the betas: proportions far from SMPL's give betas far outside the usual ±3.
    """
    x = _check_joints(joints)
    bones = np.arange(1, 22)
    parents = np.array(PARENTS[1:])
    target = np.median(np.linalg.norm(x[:, bones] - x[:, parents], axis=-1), axis=0)
    rest, basis = model.joint_template, model.joint_shape_basis
    base = rest[bones] - rest[parents]  # (21, 3)
    directions = basis[bones] - basis[parents]  # (21, 3, B)
    betas = np.zeros(model.num_betas)
    for _ in range(iterations):
        bone = base + directions @ betas
        length = np.linalg.norm(bone, axis=-1)
        jacobian = np.einsum("bk,bkn->bn", bone / length[:, None], directions)  # d|b|/dβ
        step = np.linalg.lstsq(jacobian, target - length, rcond=None)[0]
        betas += step
        if np.linalg.norm(step) < 1e-9 * (1.0 + np.linalg.norm(betas)):
            break
    return betas


def continuous_axis_angle(axis_angle: np.ndarray, *, turns: int = 3) -> np.ndarray:
    """Axis-angle ``(T, ..., 3)`` made continuous over dim 0.

    Each frame's rotation has the equivalent vectors ``(θ + 2πk)·axis``; of these (``|k| <= turns``) the sequence
    with the least total movement ``Σ|v[t] - v[t-1]|`` is kept (dynamic programming over the candidates), frame 0
    starting within 1.5π (not a turn ahead). So a body facing backwards or turning about a steady axis (up to
    ``turns`` full turns) moves its vector smoothly instead of jumping 2π at 180°. The one jump it may keep is
    inherent to axis-angle: on the sphere |v| = 2π every axis is the identity, so a tilted body ending a full turn
    near its starting orientation is either continued there (its vector swinging round as the small tilt changes)
    or jumps back once, whichever moves less.
    """
    aa = np.array(axis_angle, dtype=np.float64)
    if aa.shape[0] < 2 or aa.size == 0:
        return aa
    flat = aa.reshape(aa.shape[0], -1, 3)  # a view: writing it writes aa
    # A series that never turns as far as π/2 is best left principal: any other candidate is 1.5π or more from
    # the origin, so every step to, from or between them is at least as long as the principal step.
    series = np.nonzero(np.linalg.norm(flat, axis=-1).max(axis=0) >= np.pi / 2)[0]
    if len(series):
        flat[:, series] = _least_movement(flat[:, series], turns)
    return aa


def _least_movement(principal: np.ndarray, turns: int) -> np.ndarray:
    """The dynamic programme of :func:`continuous_axis_angle` on principal vectors ``(T, N, 3)``."""
    frames, count = principal.shape[:2]
    angle = np.linalg.norm(principal, axis=-1)  # (T, N)
    axis = principal / np.maximum(angle, 1e-12)[..., None]
    # a rotation within 1e-5 rad of the identity takes a neighbour's axis (its own is rounding noise), which
    # moves it by at most 2e-5 rad in the 2πk candidates and not at all in the principal one
    defined = angle > 1e-5
    if not defined.all():
        order = np.arange(frames)[:, None]
        last = np.maximum.accumulate(np.where(defined, order, 0), axis=0)
        nxt = np.minimum.accumulate(np.where(defined, order, frames - 1)[::-1], axis=0)[::-1]
        source = np.where(defined[last, np.arange(count)], last, nxt)
        axis = np.take_along_axis(axis, source[..., None], axis=0)
    k = np.arange(-turns, turns + 1)
    signed = angle[..., None] + 2 * np.pi * k  # (T, N, K): candidate t, k is signed[t, :, k] * axis[t]
    # |a·n - b·m|² = a² + b² - 2ab (n·m): every step between candidates from one dot product per frame pair
    cos = (axis[1:] * axis[:-1]).sum(-1)[..., None, None]
    before, after = signed[:-1, :, :, None], signed[1:, :, None, :]
    steps = np.sqrt(np.maximum(before**2 + after**2 - 2 * before * after * cos, 0.0))  # (T-1, N, Kprev, K)
    tie_break = 1e-6 * np.abs(signed)  # equal movement: the shorter vector
    # frame 0 starts within 1.5π: its principal vector, or near 180° the opposite one, never a full turn
    cost = tie_break[0] + np.where(np.abs(signed[0]) < 1.5 * np.pi, 0.0, 1e9)
    back = np.zeros(signed.shape, dtype=np.int64)
    for t in range(1, frames):
        total = cost[:, :, None] + steps[t - 1]
        back[t] = total.argmin(axis=1)
        cost = np.take_along_axis(total, back[t][:, None], axis=1)[:, 0] + tie_break[t]
    choice = np.zeros((frames, count), dtype=np.int64)
    choice[-1] = cost.argmin(axis=1)
    for t in range(frames - 1, 0, -1):
        choice[t - 1] = back[t, np.arange(count), choice[t]]
    out = np.take_along_axis(signed, choice[..., None], axis=2) * axis
    return np.where((choice == turns)[..., None], principal, out)  # k = 0: the input itself, exactly


def _check_joints(joints: Any) -> np.ndarray:
    arr = np.asarray(joints, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] != (22, 3):
        raise MotionFormatError(f"joints must have shape (frames, 22, 3), got {arr.shape}")
    if arr.shape[0] < 1 or not np.all(np.isfinite(arr)):
        raise MotionFormatError("joints must be finite with at least one frame")
    return arr


def _check_rest_joints(rest_joints: Any) -> np.ndarray:
    arr = np.asarray(rest_joints, dtype=np.float64)
    if arr.shape not in ((22, 3), (24, 3)) or not np.all(np.isfinite(arr)):
        raise MotionFormatError(f"rest_joints must be finite with shape (22, 3) or (24, 3), got {arr.shape}")
    arr = arr[:22].copy()
    if np.linalg.norm(arr[1:] - arr[list(PARENTS[1:])], axis=-1).min() < 1e-6:
        raise MotionFormatError("rest_joints has a zero-length bone")
    return arr


# ----------------------------------------------------------------------------------------------- model files
_MODEL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


@dataclass(frozen=True, eq=False)
class SMPLModel:
    """The arrays of an SMPL model file (official layout, chumpy and sparse matrices made plain numpy):
    ``v_template (V, 3)``, ``shapedirs (V, 3, B)``, ``posedirs (V, 3, P)``, ``J_regressor (24, V)``, ``weights
    (V, 24)``, ``kintree_table (2, 24)``, ``f (F, 3)``."""

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray  # the file's own key
    weights: np.ndarray
    kintree_table: np.ndarray
    f: np.ndarray

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[-1])

    @cached_property
    def joint_template(self) -> np.ndarray:
        """Rest joints ``(24, 3)`` at betas 0: ``J_regressor v_template``."""
        return self.J_regressor @ self.v_template

    @cached_property
    def joint_shape_basis(self) -> np.ndarray:
        """``(24, 3, B)``: how the rest joints move per unit of each beta, ``J_regressor shapedirs``."""
        vertices, _, betas = self.shapedirs.shape
        return (self.J_regressor @ self.shapedirs.reshape(vertices, 3 * betas)).reshape(-1, 3, betas)

    def rest_joints(self, betas: np.ndarray | None = None) -> np.ndarray:
        """Rest joints ``(24, 3)`` float64 at ``betas (B,)`` (default 0): ``J_regressor (v_template + shapedirs β)``,
        linear in β."""
        if betas is None:
            return self.joint_template.copy()
        return self.joint_template + self.joint_shape_basis @ np.asarray(betas, dtype=np.float64)

    def to_smplx(self, batch_size: int = 1, **kwargs: Any) -> Any:
        """An ``smplx.SMPL`` body model of these arrays (meshes, smplx's own FK), built without smplx reading the
        file (its loader unpickles anything and needs chumpy for official files)."""
        import smplx  # torch: only when a mesh is wanted

        struct = smplx.utils.Struct(**{k: getattr(self, k) for k in _MODEL_KEYS})
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note for 10-beta models; we never print
            return smplx.SMPL(
                model_path="", data_struct=struct, batch_size=batch_size, num_betas=self.num_betas, **kwargs
            )


def load_smpl_model(path: str | Path, *, num_betas: int = 10) -> SMPLModel:
    """Load an SMPL model file (``.pkl`` as distributed, with or without chumpy objects, or ``.npz`` with the same
    keys) keeping its first ``num_betas`` shape components. Nothing arbitrary is unpickled: only numpy arrays,
    scipy sparse matrices and chumpy arrays (as plain data); anything else is refused."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                raw: Any = {k: data[k] for k in data.files}
        else:
            with open(path, "rb") as fh:
                raw = _ModelUnpickler(fh, encoding="latin1").load()
    except OSError as exc:
        raise MotionFormatError(f"{path}: unreadable ({exc.strerror})") from None
    except Exception as exc:  # any failure to decode an untrusted file means: not a model file we can read
        raise MotionFormatError(
            f"{path}: not a readable SMPL model file ({exc})",
            hint="use the official SMPL .pkl, or an .npz with its arrays (v_template, shapedirs, J_regressor, ...)",
        ) from None
    if not isinstance(raw, dict):
        raise MotionFormatError(f"{path}: not an SMPL model file (no dictionary of arrays)")
    missing = [k for k in _MODEL_KEYS if k not in raw]
    if missing:
        raise MotionFormatError(f"{path}: not an SMPL model file (missing {', '.join(missing)})")
    arrays = {k: _plain_array(raw[k], k, path) for k in _MODEL_KEYS}
    vertices = arrays["v_template"].shape[0]
    expected = {
        "v_template": (vertices, 3),
        "shapedirs": (vertices, 3, None),
        "posedirs": (vertices, 3, None),
        "J_regressor": (24, vertices),
        "weights": (vertices, 24),
        "kintree_table": (2, 24),
        "f": (None, 3),
    }
    for key, shape in expected.items():
        got = arrays[key].shape
        if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got, strict=True)):
            raise MotionFormatError(f"{path}: {key} has shape {got}, expected an SMPL model's {shape}")
    parents = arrays["kintree_table"][0].astype(np.int64)
    parents[0] = -1
    if tuple(parents) != SMPL_PARENTS:
        raise MotionFormatError(f"{path}: the kinematic tree is not SMPL's 24-joint body")
    arrays["shapedirs"] = arrays["shapedirs"][:, :, :num_betas]
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        arrays[key] = arrays[key].astype(np.float64)
    for array in arrays.values():
        array.setflags(write=False)  # the model caches its joint regression
    return SMPLModel(**arrays)


class _Stub:
    """Stand-in for a chumpy array or a scipy sparse matrix: it keeps the pickled state and runs nothing."""

    source = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Stub:
        return super().__new__(cls)

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _ModelUnpickler(pickle.Unpickler):
    """Resolves only the globals an SMPL model file needs; chumpy and scipy.sparse become :class:`_Stub`s."""

    _ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("copy_reg", "_reconstructor"): __import__("copyreg")._reconstructor,
        ("copyreg", "_reconstructor"): __import__("copyreg")._reconstructor,
        ("__builtin__", "object"): object,
        ("builtins", "object"): object,
        ("__builtin__", "set"): set,  # chumpy objects keep sets in their state
        ("builtins", "set"): set,
        ("__builtin__", "frozenset"): frozenset,
        ("builtins", "frozenset"): frozenset,
        ("_codecs", "encode"): lambda text, encoding="utf-8": _bytes_of(text, encoding),  # Python 3 protocol 2
    }
    for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1.x and 2.x spellings
        _ALLOWED[(_module, "_reconstruct")] = np.ndarray(0).__reduce__()[0]
        _ALLOWED[(_module, "scalar")] = np.float64(0).__reduce__()[0]
    del _module

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "chumpy" or module.startswith("chumpy.") or module.startswith("scipy.sparse"):
            return type(name, (_Stub,), {"source": f"{module}.{name}"})
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _bytes_of(text: str, encoding: str) -> bytes:
    """How protocol-2 pickles written by Python 3 spell bytes (``_codecs.encode(text, "latin1")``); no other codec."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing to decode bytes with {encoding!r}")
    return text.encode("latin1")


def _plain_array(value: Any, key: str, path: Path) -> np.ndarray:
    """A model entry as a dense numpy array: chumpy arrays by their value ``x``, sparse matrices densified."""
    if isinstance(value, _Stub):
        state = value.__dict__.get("state")
        state = state if isinstance(state, dict) else {}
        name = value.source.rsplit(".", 1)[-1]
        if value.source.startswith("chumpy") and "x" in state:
            return _plain_array(state["x"], key, path)
        if name[:3] in ("csc", "csr") and {"data", "indices", "indptr"} <= state.keys():
            rows, cols = state.get("_shape", state.get("shape"))
            data, indices, indptr = (np.asarray(state[k]) for k in ("data", "indices", "indptr"))
            dense = np.zeros((rows, cols) if name[:3] == "csr" else (cols, rows))
            major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
            np.add.at(dense, (major, indices), data)
            return dense if name[:3] == "csr" else dense.T
        raise MotionFormatError(
            f"{path}: {key} is a {value.source} object this loader cannot read",
            hint="convert the file with smplx's tools/clean_ch.py, or save its arrays as .npz",
        )
    return np.asarray(value)
