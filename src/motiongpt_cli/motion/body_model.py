"""SMPL, SMPL-H and SMPL-X model files as plain numpy arrays: no chumpy, no smplx or torch, and no code unpickled.

Accepted (:func:`load_smpl_model`; the family comes from the joint count, 24, 52 or 55, never from the file name):

- the official SMPL ``.pkl`` (``SMPL_NEUTRAL.pkl`` and the gendered ones), with or without chumpy objects;
- AMASS's and MANO's SMPL-H ``.npz`` / ``.pkl``;
- SMPL-X's ``SMPLX_NEUTRAL.npz`` (v1.1: 300 shape + 100 expression columns in ``shapedirs``; v1.0: 10 + 10);
- any ``.npz`` of the same arrays: ``v_template``, ``shapedirs``, ``posedirs``, ``J_regressor``, ``weights``,
  ``kintree_table``, ``f``, and optionally SMPL-H / SMPL-X's hand PCA and SMPL-X's landmark arrays.

A MANO hand or a FLAME head is refused: it cannot pose a body. Arrays keep the file's units and axes (SMPL's: metres,
Y up); the first 22 joints are SMPL's body in SMPL's order in all three families.

Safety (a model file comes from the user, and unpickling can run code):

- A ``.pkl`` goes through :class:`_ModelUnpickler`, which resolves only an allow-list of globals: numpy's
  ndarray, dtype, ``_reconstruct`` and ``scalar`` (numpy 1.x and 2.x spellings), ``copyreg._reconstructor``,
  ``object``, ``set``, ``frozenset``, and ``_codecs.encode`` for latin-1 only. Classes of ``chumpy`` and
  ``scipy.sparse`` become inert :class:`_Stub` subclasses that keep their pickled state and run nothing;
  :func:`_plain_array` reads them as data (a chumpy array by its value ``x``, a CSR / CSC matrix from ``data``,
  ``indices`` and ``indptr``). Any other global is refused.
- An ``.npz`` is opened with ``allow_pickle=False`` and only the model's arrays are read, never its pickled objects
  (SMPL-X files carry some).
- Every array is checked against its family's shapes, the faces against the vertex count and the kinematic tree
  against SMPL's body; whatever fails is one :class:`MotionFormatError` naming the file.

A loaded :class:`SMPLModel` is read-only and cached (the last two files, until they change on disk). Meshes come
from smplx (:meth:`SMPLModel.to_smplx`, which imports torch), built from these arrays so that smplx never reads the
user's file. Posing a model's skeleton from joints is :mod:`.smpl`'s.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import tempfile
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import InvalidValueError, MotionFormatError
from .skeleton import PARENTS

SMPL_PARENTS: tuple[int, ...] = PARENTS + (20, 21)  # + left_hand, right_hand
Family = Literal["smpl", "smplh", "smplx"]
FAMILY_NAMES: dict[str, str] = {"smpl": "SMPL", "smplh": "SMPL-H", "smplx": "SMPL-X"}
# joints of each family's kinematic tree: SMPL's 24; SMPL-H's 22 body + 2 x 15 hand; SMPL-X's 22 body + jaw and
# eyes + 2 x 15 hand (smplx body_models.py, SMPLH.NUM_JOINTS and SMPLX.NUM_JOINTS + the root). The first 22 are
# SMPL's body in SMPL's order in all three (smplx joint_names.py), so one body solution poses any of them.
FAMILY_JOINTS: dict[str, int] = {"smpl": 24, "smplh": 52, "smplx": 55}
_FAMILY_OF_JOINTS = {joints: family for family, joints in FAMILY_JOINTS.items()}
_MODEL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
# optional arrays smplx's SMPLH / SMPLX read: hand PCA (unused here, hands are posed as 45 zeros without PCA) and
# SMPL-X's face landmarks (joints after the mesh's, not the mesh); missing ones are filled in by to_smplx
_HAND_KEYS = ("hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr")
_LANDMARK_KEYS = ("lmk_faces_idx", "lmk_bary_coords")
_HAND_DIM = 45  # 15 joints x 3, per hand
# SMPL-X's shapedirs hold shape then expression columns: 300 + 100 (v1.1), else 10 + 10 (v1.0); smplx's
# SMPLX.__init__ splits them so, and keeps 10 expression components by default
_SMPLX_SHAPE_SPACE, _SMPLX_EXPRESSIONS = 300, 10


@dataclass(frozen=True, eq=False)
class SMPLModel:
    """The arrays of an SMPL, SMPL-H or SMPL-X model file (official layouts, chumpy and sparse matrices made plain
    numpy), for ``J`` = 24, 52 or 55 joints: ``v_template (V, 3)``, ``shapedirs (V, 3, B)`` (shape components only;
    SMPL-X's expression columns are in ``extras``), ``posedirs (V, 3, 9 (J - 1))``, ``J_regressor (J, V)``,
    ``weights (V, J)``, ``kintree_table (2, J)``, ``f (F, 3)``.

    ``family`` is ``"smpl"``, ``"smplh"`` or ``"smplx"`` (from the joint count). ``extras`` holds what the file had
    of SMPL-H / SMPL-X's optional arrays: ``hands_components{l,r} (C, 45)``, ``hands_mean{l,r} (45,)``,
    ``lmk_faces_idx (L,)``, ``lmk_bary_coords (L, 3)``, and for SMPL-X ``expr_dirs (V, 3, E)``, its first 10
    expression components."""

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray  # the file's own key
    weights: np.ndarray
    kintree_table: np.ndarray
    f: np.ndarray
    family: Family = "smpl"
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[-1])

    @property
    def num_joints(self) -> int:
        return int(self.J_regressor.shape[0])

    @cached_property
    def joint_template(self) -> np.ndarray:
        """Rest joints ``(J, 3)`` at betas 0: ``J_regressor v_template``."""
        return self.J_regressor @ self.v_template

    @cached_property
    def joint_shape_basis(self) -> np.ndarray:
        """``(J, 3, B)``: how the rest joints move per unit of each beta, ``J_regressor shapedirs``."""
        vertices, _, betas = self.shapedirs.shape
        return (self.J_regressor @ self.shapedirs.reshape(vertices, 3 * betas)).reshape(-1, 3, betas)

    def rest_joints(self, betas: np.ndarray | None = None) -> np.ndarray:
        """Rest joints ``(J, 3)`` float64 at ``betas (B,)`` (default 0): ``J_regressor (v_template + shapedirs β)``,
        linear in β. The first 22 are the body's, in SMPL's order, in every family."""
        if betas is None:
            return self.joint_template.copy()
        return self.joint_template + self.joint_shape_basis @ np.asarray(betas, dtype=np.float64)

    def to_smplx(self, batch_size: int = 1, **kwargs: Any) -> Any:
        """The smplx body model of these arrays: ``smplx.SMPL``, ``smplx.SMPLH`` or ``smplx.SMPLX`` by ``family``
        (meshes, smplx's own FK), with ``num_betas`` shape components. ``kwargs`` go to the smplx class.

        SMPL and SMPL-H are built from memory (``data_struct=``), so smplx never reads the file (its loader
        unpickles anything and needs chumpy for official files). ``smplx.SMPLX`` takes no ``data_struct`` (it always
        loads a file), so an SMPL-X model is written as a float32 ``.npz`` (smplx computes in float32) to a
        temporary folder, loaded from there and deleted.

        Hands (SMPL-H, SMPL-X) default to ``use_pca=False, flat_hand_mean=True``: a hand pose is 45 axis-angle
        values and zeros are the flat hand, as in AMASS files. (smplx's own defaults, 6 PCA components and
        ``flat_hand_mean=False``, would add the model's mean hand pose to zeros.) Hand PCA arrays missing from the
        file are filled with identity components and a zero mean, SMPL-X landmarks with none.

        smplx appends joints read off landmark vertices of the full meshes (ids up to 6787 for SMPL/SMPL-H, 9929
        for SMPL-X); a smaller mesh has no such vertices, so there they read vertex 0 rather than fail."""
        import smplx  # torch: only when a mesh is wanted

        landmarks = smplx.vertex_ids.vertex_ids["smplx" if self.family == "smplx" else "smplh"]
        vertex_ids = kwargs.pop("vertex_ids", None)
        if vertex_ids is None and self.v_template.shape[0] <= max(landmarks.values()):
            vertex_ids = dict.fromkeys(landmarks, 0)
        if self.family != "smpl":
            kwargs.setdefault("use_pca", False)
            kwargs.setdefault("flat_hand_mean", True)
        arrays = self._smplx_arrays()
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note for 10-beta models; we never print
            if self.family == "smplx":
                kwargs.setdefault("num_expression_coeffs", _SMPLX_EXPRESSIONS)
                with tempfile.TemporaryDirectory(prefix="motiongpt-smplx-", ignore_cleanup_errors=True) as tmp:
                    file = Path(tmp) / "SMPLX_NEUTRAL.npz"
                    with open(file, "wb") as fh:
                        np.savez(fh, **arrays)
                    body = smplx.SMPLX(model_path=str(file), ext="npz", batch_size=batch_size,
                                       num_betas=self.num_betas, **kwargs)  # fmt: skip
                if vertex_ids is not None:  # SMPLX fixes its vertex_ids to SMPL-X's own: swap the selector
                    body.vertex_joint_selector = smplx.vertex_joint_selector.VertexJointSelector(vertex_ids)
                return body
            body_class = smplx.SMPL if self.family == "smpl" else smplx.SMPLH
            return body_class(model_path="", data_struct=smplx.utils.Struct(**arrays), batch_size=batch_size,
                              num_betas=self.num_betas, vertex_ids=vertex_ids, **kwargs)  # fmt: skip

    def _smplx_arrays(self) -> dict[str, np.ndarray]:
        """The arrays as the smplx class of ``family`` reads them (float32 for SMPL-X's temporary file)."""
        arrays = {k: getattr(self, k) for k in _MODEL_KEYS}
        if self.family == "smpl" and self.num_betas <= 10:
            return arrays
        vertices = self.v_template.shape[0]
        # smplx keeps at most 10 betas of a model with fewer than 300 shape columns (SMPL.__init__), and splits
        # SMPL-X's columns by their count: zero columns pad them to the layout that keeps all num_betas
        space = 10 if self.num_betas <= 10 else _SMPLX_SHAPE_SPACE
        shape = _pad_columns(self.shapedirs, space)
        if self.family == "smplx":
            expressions = _pad_columns(self.extras.get("expr_dirs", np.zeros((vertices, 3, 0))),
                                       10 if space == 10 else 100)  # fmt: skip
            arrays["shapedirs"] = np.concatenate([shape, expressions], axis=-1)
        elif self.num_betas > 10:
            arrays["shapedirs"] = shape
        if self.family != "smpl":
            eye, zero = np.eye(_HAND_DIM), np.zeros(_HAND_DIM)
            defaults = {"hands_componentsl": eye, "hands_componentsr": eye, "hands_meanl": zero, "hands_meanr": zero}
            arrays.update({k: self.extras.get(k, v) for k, v in defaults.items()})
        if self.family == "smplx":
            arrays["lmk_faces_idx"] = self.extras.get("lmk_faces_idx", np.zeros(0, np.int64))
            arrays["lmk_bary_coords"] = self.extras.get("lmk_bary_coords", np.zeros((0, 3)))
            arrays = {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in arrays.items()}
        return arrays


def _pad_columns(directions: np.ndarray, columns: int) -> np.ndarray:
    """``directions (V, 3, n)`` with zero columns appended up to ``columns`` (n <= columns)."""
    pad = np.zeros(directions.shape[:2] + (columns - directions.shape[-1],), dtype=directions.dtype)
    return np.concatenate([directions, pad], axis=-1)


def load_smpl_model(path: str | Path, *, num_betas: int = 10) -> SMPLModel:
    """Load an SMPL, SMPL-H or SMPL-X model file, keeping its first ``num_betas`` shape components (at most the
    file's; SMPL-X's expression columns are not shape components).

    The family comes from the joint count (24, 52 or 55), not the file name: the official SMPL ``.pkl`` (with or
    without chumpy objects), AMASS's and MANO's SMPL-H ``.npz`` / ``.pkl``, ``SMPLX_NEUTRAL.npz``, or an ``.npz``
    of the same arrays. Nothing arbitrary is unpickled: a ``.pkl`` may hold only numpy arrays, scipy sparse
    matrices and chumpy arrays (as plain data), and of an ``.npz`` only the model's arrays are read, never its
    pickled objects (SMPL-X files carry some). Anything else is refused with one :class:`MotionFormatError`
    naming the file.

    The last two files loaded are kept (the model is read-only, so callers share it) until they change on disk:
    checking a model before sampling and writing several outputs of several motions read it once."""
    if isinstance(num_betas, bool) or not isinstance(num_betas, int) or num_betas < 1:
        raise InvalidValueError(f"num_betas must be a positive integer, got {num_betas!r}")
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise MotionFormatError(f"{path}: unreadable ({exc.strerror})") from None
    return _read_smpl_model(path, path.resolve(), stat.st_mtime_ns, stat.st_size, num_betas)


@lru_cache(maxsize=2)
def _read_smpl_model(path: Path, resolved: Path, mtime_ns: int, size: int, num_betas: int) -> SMPLModel:
    """:func:`load_smpl_model`'s reading, cached by the file's identity, time and size (``path`` names it in
    errors)."""
    wanted = _MODEL_KEYS + _HAND_KEYS + _LANDMARK_KEYS
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                raw: Any = {k: data[k] for k in data.files if k in wanted}
        else:
            with open(path, "rb") as fh:
                raw = _ModelUnpickler(fh, encoding="latin1").load()
    except OSError as exc:
        raise MotionFormatError(f"{path}: unreadable ({exc.strerror})") from None
    except Exception as exc:  # any failure to decode an untrusted file means: not a model file we can read
        raise MotionFormatError(
            f"{path}: not a readable SMPL model file ({exc})",
            hint="use the official SMPL .pkl, an SMPL-H or SMPL-X .npz, or an .npz with their arrays "
            "(v_template, shapedirs, J_regressor, ...)",
        ) from None
    if not isinstance(raw, dict):
        raise MotionFormatError(f"{path}: not an SMPL model file (no dictionary of arrays)")
    missing = [k for k in _MODEL_KEYS if k not in raw]
    if missing:
        raise MotionFormatError(f"{path}: not an SMPL model file (missing {', '.join(missing)})")
    arrays = {k: _plain_array(raw[k], k, path) for k in _MODEL_KEYS}
    regressor = arrays["J_regressor"]
    joints = regressor.shape[0] if regressor.ndim == 2 else -1
    family = _FAMILY_OF_JOINTS.get(joints)
    if family is None:
        raise MotionFormatError(
            f"{path}: J_regressor has shape {regressor.shape}, not the joints of SMPL (24), SMPL-H (52) or SMPL-X (55)",
            hint="--smpl-model takes a whole-body model (a MANO hand or FLAME head cannot pose a body)",
        )
    name = FAMILY_NAMES[family]
    vertices = arrays["v_template"].shape[0] if arrays["v_template"].ndim == 2 else -1
    expected = {
        "v_template": (vertices, 3),
        "shapedirs": (vertices, 3, None),
        "posedirs": (vertices, 3, 9 * (joints - 1)),  # a 3x3 rotation feature per joint but the root
        "J_regressor": (joints, vertices),
        "weights": (vertices, joints),
        "kintree_table": (2, joints),
        "f": (None, 3),
    }
    for key, shape in expected.items():
        _check_shape(arrays[key], shape, key, f"an {name} model's", path)
    faces = arrays["f"]
    if faces.dtype.kind not in "iu" or faces.size == 0 or faces.min() < 0 or faces.max() >= vertices:
        raise MotionFormatError(f"{path}: f is not triangles of vertex indices 0..{vertices - 1}")
    parents = arrays["kintree_table"][0].astype(np.int64)
    parents[0] = -1
    if family == "smpl" and tuple(parents) != SMPL_PARENTS:
        raise MotionFormatError(f"{path}: the kinematic tree is not SMPL's 24-joint body")
    if family != "smpl":
        later = parents[22:]
        if tuple(parents[:22]) != PARENTS or np.any(later < 0) or np.any(later >= np.arange(22, joints)):
            raise MotionFormatError(f"{path}: the kinematic tree is not {name}'s (SMPL's 22 body joints first, "
                                    "then joints hanging off earlier ones)")  # fmt: skip
    shapedirs, extras = arrays["shapedirs"], {}
    if family == "smplx":  # shape columns, then expression columns
        space = _SMPLX_SHAPE_SPACE if shapedirs.shape[-1] >= _SMPLX_SHAPE_SPACE + 100 else 10
        extras["expr_dirs"] = shapedirs[:, :, space : space + _SMPLX_EXPRESSIONS].astype(np.float64)
        shapedirs = shapedirs[:, :, :space]
    if shapedirs.shape[-1] == 0:
        raise MotionFormatError(f"{path}: shapedirs has no shape components")
    arrays["shapedirs"] = shapedirs[:, :, :num_betas]
    if family != "smpl":
        extras.update(_optional_arrays(raw, family, vertices, len(faces), path))
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        arrays[key] = arrays[key].astype(np.float64)
    for array in (*arrays.values(), *extras.values()):
        array.setflags(write=False)  # the model caches its joint regression
    return SMPLModel(**arrays, family=family, extras=extras)


def _check_shape(array: np.ndarray, shape: tuple[int | None, ...], key: str, whose: str, path: Path) -> None:
    got = array.shape
    if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got, strict=True)):
        raise MotionFormatError(f"{path}: {key} has shape {got}, expected {whose} {shape}")


def _optional_arrays(raw: dict, family: str, vertices: int, faces: int, path: Path) -> dict[str, np.ndarray]:
    """SMPL-H / SMPL-X's optional hand and landmark arrays that ``raw`` has, checked (they reach smplx)."""
    out = {}
    whose = f"an {FAMILY_NAMES[family]} model's"
    for key in _HAND_KEYS + (_LANDMARK_KEYS if family == "smplx" else ()):
        if key not in raw:
            continue
        array = _plain_array(raw[key], key, path)
        if key.startswith("hands_components"):
            _check_shape(array, (None, _HAND_DIM), key, whose, path)
        elif key.startswith("hands_mean"):
            _check_shape(array.reshape(-1), (_HAND_DIM,), key, whose, path)
            array = array.reshape(-1)
        out[key] = array
    if family == "smplx" and any(k in out for k in _LANDMARK_KEYS):
        index = out.get("lmk_faces_idx", np.zeros(0, np.int64)).reshape(-1)
        _check_shape(out.get("lmk_bary_coords", np.zeros((0, 3))), (len(index), 3), "lmk_bary_coords", whose, path)
        if index.dtype.kind not in "iu" or (index.size and (index.min() < 0 or index.max() >= faces)):
            raise MotionFormatError(f"{path}: lmk_faces_idx is not indices of the model's {faces} faces")
        out["lmk_faces_idx"] = index.astype(np.int64)
    for key, array in out.items():
        if array.dtype.kind == "f":
            out[key] = array.astype(np.float64)
    return out


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
