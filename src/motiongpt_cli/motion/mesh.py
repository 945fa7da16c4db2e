"""Per-frame Wavefront OBJ meshes of a motion (``--format obj``): the user's SMPL, SMPL-H or SMPL-X model posed by
the analytic solver of :mod:`.smpl`, one file per frame, as MDM's ``visualize.render_mesh`` writes them.

Conventions:

- A folder ``<stem>_obj/`` of ``frame000.obj``, ``frame001.obj``, ... (MDM: ``sample00_rep00_obj/frame000.obj``).
  The frame number has 3 digits, more from 1000 frames on, so the names sort in frame order.
- Each file: a ``#`` comment line, ``v x y z`` per vertex (metres, 6 decimals), then ``f a b c`` per triangle of the
  model's ``f`` (1-based, as OBJ counts). No normals or texture coordinates: importers compute normals.
- Axes are those of our other outputs (HumanML3D's, which are SMPL's): Y up, +Z forward. Blender's OBJ importer
  (Up: Y by default) stands the body upright.
- The mesh is where the joints are: smplx's ``transl`` is the solver's, so the posed pelvis is the input pelvis
  (MDM's meshes are off by the rest pelvis, reference doc §1.1). The shape is betas 0, or with ``fit_shape`` the
  betas fitted to the clip's bone lengths (:func:`.smpl.fit_betas`).
- The 21 body joints are the solver's in every family. What 22 joints cannot tell is zero: SMPL's two hand joints,
  SMPL-H / SMPL-X's 2 x 15 finger joints (45 axis-angle zeros per hand without PCA, the flat hand: see
  :meth:`.body_model.SMPLModel.to_smplx`), SMPL-X's jaw and eyes, and its expression (the neutral face).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..atomic import atomic_folder
from .body_model import FAMILY_NAMES, SMPLModel
from .smpl import SMPLParams, joints_to_smpl


def obj_frame_names(frames: int) -> list[str]:
    """File names of ``frames`` frames: ``frame000.obj`` ... (at least 3 digits, MDM's ``frame{:03d}.obj``)."""
    width = max(3, len(str(frames - 1)))
    return [f"frame{i:0{width}d}.obj" for i in range(frames)]


def iter_smpl_vertices(params: SMPLParams, model: SMPLModel, *, batch_size: int = 64) -> Iterator[np.ndarray]:
    """Mesh vertices ``(≤ batch_size, V, 3)`` float32, metres, of ``model`` posed by ``params``, batch by batch in
    frame order: smplx's forward pass on the CPU without autograd, so a long clip never holds all its meshes."""
    import torch

    # built for a batch of 1: smplx's SMPL-X repeats its face landmarks to the build-time batch size, and only a
    # size of 1 broadcasts to every batch (the last, shorter one too)
    body = model.to_smplx()
    shape = np.zeros(model.num_betas) if params.betas is None else params.betas  # None: a skeleton, not a shape
    frames = params.num_frames
    body_joints = 23 if model.family == "smpl" else 21  # SMPL's hands are its body_pose joints 22, 23
    betas, orient, pose, transl = (
        torch.as_tensor(np.asarray(a, dtype=np.float32))
        for a in (shape[None], params.global_orient, params.body_pose[:, :body_joints].reshape(frames, -1),
                  params.transl)
    )  # fmt: skip
    with torch.no_grad():
        for start in range(0, frames, batch_size):
            batch = slice(start, start + batch_size)
            count = len(transl[batch])
            zeros = {}  # what 22 joints cannot tell
            if model.family != "smpl":  # 15 joints x 3 per hand, no PCA (to_smplx's use_pca=False): flat hands
                zeros |= {k: torch.zeros(count, 45) for k in ("left_hand_pose", "right_hand_pose")}
            if model.family == "smplx":
                zeros |= {k: torch.zeros(count, 3) for k in ("jaw_pose", "leye_pose", "reye_pose")}
                zeros["expression"] = torch.zeros(count, body.num_expression_coeffs)
            out = body(betas=betas.expand(count, -1), global_orient=orient[batch], body_pose=pose[batch],
                       transl=transl[batch], **zeros)  # fmt: skip
            yield out.vertices.numpy()


def obj_vertex_lines(vertices: np.ndarray) -> str:
    """``v x y z`` lines of ``vertices (V, 3)``, 6 decimals (one ``%`` over the whole frame, no Python loop)."""
    return ("v %.6f %.6f %.6f\n" * len(vertices)) % tuple(np.asarray(vertices, dtype=np.float64).ravel().tolist())


def obj_face_lines(faces: np.ndarray) -> str:
    """``f a b c`` lines of 0-based triangles ``faces (F, 3)``, written 1-based as OBJ counts vertices."""
    return ("f %d %d %d\n" * len(faces)) % tuple((np.asarray(faces, dtype=np.int64) + 1).ravel().tolist())


def write_obj_frames(path: str | Path, joints: np.ndarray, model: SMPLModel, *, fit_shape: bool = False,
                     overwrite: bool = False) -> Path:  # fmt: skip
    """Write the folder ``path`` of one OBJ mesh per frame of ``joints: (frames, 22, 3)`` (metres, Y up), ``model``
    (SMPL, SMPL-H or SMPL-X) posed by :func:`.smpl.joints_to_smpl` (betas fitted with ``fit_shape``). The folder
    appears complete or not at all (:func:`~motiongpt_cli.atomic.atomic_folder`); an existing one is an error unless
    ``overwrite``."""
    params = joints_to_smpl(joints, model=model, fit_shape=fit_shape)
    meshes = (vertices for batch in iter_smpl_vertices(params, model) for vertices in batch)
    faces = obj_face_lines(model.f).encode("ascii")  # the same triangles in every frame
    family = FAMILY_NAMES[model.family]
    with atomic_folder(path, overwrite=overwrite) as tmp:
        for i, (name, vertices) in enumerate(zip(obj_frame_names(params.num_frames), meshes, strict=True)):
            header = f"# frame {i} of {params.num_frames}: {family} mesh, metres, Y up (motiongpt-cli)\n"
            with open(tmp / name, "wb") as fh:
                fh.write((header + obj_vertex_lines(vertices)).encode("ascii"))
                fh.write(faces)
    return Path(path)
