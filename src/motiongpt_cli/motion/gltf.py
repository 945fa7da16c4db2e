"""Binary glTF 2.0 (``.glb``) of a 22-joint motion: a skin, its animation and a capsule body skinned to it.

Conventions (glTF's own, which are HumanML3D's): Y up, metres, the character faces +Z; quaternions in the file are
glTF's ``(x, y, z, w)`` (the rest of this package uses ``(w, x, y, z)``).

- Skeleton: the BVH writer's (:func:`.bvh.joints_to_bvh`): 22 nodes named as in SMPL-based tools (Hips ...
  RightHand), offsets from the motion's own median bone lengths, the arms-down rest with every joint's orientation
  the identity. The rest (bind) pose stands on the floor: the Hips rest translation lifts the lowest rest joint to
  y = 0; the inverse bind matrices are the inverse rest world transforms.
- Animation: one rotation channel per joint (the BVH solver's local rotations, signs made continuous over time so
  a LINEAR (slerp) sampler never takes the long way round) and one translation channel for the Hips (the root's
  world position), keyed at ``i / fps`` seconds. Evaluating the node hierarchy at key ``i`` reproduces the input
  joints of frame ``i`` (to float32 precision on top of the solver's error).
- Body: one capsule per bone (parent -> child, skinned rigidly to the parent, which is the joint that moves it)
  plus a head, hands and toes, all in one skinned primitive with one material, so any viewer shows a figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from . import rotations as rot
from .bvh import BVH_NAMES, BVH_PARENTS, joints_to_bvh

# capsule radius (m) of the bone ending at each joint (BVH names); end capsules (head, hands, toes) by their joint
_BONE_RADII = {
    "LeftUpLeg": 0.07, "RightUpLeg": 0.07, "LeftLeg": 0.065, "RightLeg": 0.065, "LeftFoot": 0.05,
    "RightFoot": 0.05, "LeftToe": 0.04, "RightToe": 0.04, "Spine": 0.09, "Spine1": 0.09, "Spine2": 0.095,
    "Neck": 0.05, "Head": 0.045, "LeftShoulder": 0.05, "RightShoulder": 0.05, "LeftArm": 0.05, "RightArm": 0.05,
    "LeftForeArm": 0.045, "RightForeArm": 0.045, "LeftHand": 0.04, "RightHand": 0.04,
}  # fmt: skip
# (joint, direction of the end capsule in the rest pose, its length, its radius)
_END_CAPSULES = (
    ("Head", (0.0, 1.0, 0.0), 0.12, 0.09),
    ("LeftHand", (0.0, -1.0, 0.0), 0.08, 0.04),
    ("RightHand", (0.0, -1.0, 0.0), 0.08, 0.04),
    ("LeftToe", (0.0, 0.0, 1.0), 0.04, 0.035),
    ("RightToe", (0.0, 0.0, 1.0), 0.04, 0.035),
)
_SEGMENTS = 10  # vertices around a capsule
_CAP_RINGS = 3  # latitude rings per hemisphere (the last one the equator)


def _capsule(start: np.ndarray, end: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices ``(V, 3)``, outward normals ``(V, 3)`` and CCW triangles ``(T, 3)`` of a capsule from ``start`` to
    ``end`` (the centres of its two hemispheres)."""
    axis = end - start
    length = float(np.linalg.norm(axis))
    a = axis / length if length > 1e-9 else np.array([0.0, 1.0, 0.0])
    helper = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(a, helper)
    u /= np.linalg.norm(u)
    v = np.cross(a, u)  # u x v = a: angles increase counter-clockwise seen from the top
    phi = 2 * np.pi * np.arange(_SEGMENTS) / _SEGMENTS
    around = np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v  # (S, 3)
    # polar angle from the top pole; the top hemisphere is centred on `end`, the bottom one on `start`
    top = np.pi / 2 * np.arange(1, _CAP_RINGS + 1) / _CAP_RINGS
    bottom = np.pi / 2 + np.pi / 2 * np.arange(0, _CAP_RINGS) / _CAP_RINGS
    normals = [a[None]]
    points = [(end + radius * a)[None]]
    for theta, centre in [(t, end) for t in top] + [(t, start) for t in bottom]:
        n = np.cos(theta) * a + np.sin(theta) * around
        normals.append(n)
        points.append(centre + radius * n)
    normals.append(-a[None])
    points.append((start - radius * a)[None])
    rings = 2 * _CAP_RINGS
    ring = lambda r, s: 1 + r * _SEGMENTS + s % _SEGMENTS  # noqa: E731
    pole_bottom = 1 + rings * _SEGMENTS
    tris = []
    for s in range(_SEGMENTS):
        tris.append((0, ring(0, s), ring(0, s + 1)))
        for r in range(rings - 1):
            tris.append((ring(r, s), ring(r + 1, s), ring(r + 1, s + 1)))
            tris.append((ring(r, s), ring(r + 1, s + 1), ring(r, s + 1)))
        tris.append((ring(rings - 1, s), pole_bottom, ring(rings - 1, s + 1)))
    return np.concatenate(points), np.concatenate(normals), np.array(tris)


def _body_mesh(rest: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Capsules on the rest skeleton ``rest (22, 3)`` (world positions): positions, normals, the joint each vertex
    is bound to, and triangles."""
    parts = []
    for j, parent in enumerate(BVH_PARENTS):
        if parent >= 0:
            parts.append((rest[parent], rest[j], _BONE_RADII[BVH_NAMES[j]], parent))
    for name, direction, length, radius in _END_CAPSULES:
        j = BVH_NAMES.index(name)
        parts.append((rest[j], rest[j] + length * np.array(direction), radius, j))
    positions, normals, joints, triangles = [], [], [], []
    count = 0
    for start, end, radius, joint in parts:
        p, n, t = _capsule(np.asarray(start, float), np.asarray(end, float), radius)
        positions.append(p)
        normals.append(n)
        joints.append(np.full(len(p), joint))
        triangles.append(t + count)
        count += len(p)
    return np.concatenate(positions), np.concatenate(normals), np.concatenate(joints), np.concatenate(triangles)


def _rest_positions(offsets: np.ndarray) -> np.ndarray:
    """World positions ``(22, 3)`` of the rest pose (every rest orientation the identity)."""
    positions = np.zeros((22, 3))
    for j, parent in enumerate(BVH_PARENTS):
        positions[j] = (positions[parent] if parent >= 0 else 0.0) + offsets[j]
    return positions


class _Blob:
    """The GLB's one binary buffer, built accessor by accessor (each view 4-byte aligned)."""

    def __init__(self, gltf) -> None:
        self.gltf = gltf
        self.data = bytearray()

    def add(self, array: np.ndarray, kind: str, *, target: int | None = None) -> int:
        import pygltflib as g

        component = {np.dtype(np.float32): g.FLOAT, np.dtype(np.uint16): g.UNSIGNED_SHORT,
                     np.dtype(np.uint8): g.UNSIGNED_BYTE, np.dtype(np.uint32): g.UNSIGNED_INT}[array.dtype]  # fmt: skip
        array = np.ascontiguousarray(array)
        while len(self.data) % 4:
            self.data.append(0)
        view = g.BufferView(buffer=0, byteOffset=len(self.data), byteLength=array.nbytes, target=target)
        self.data += array.tobytes()
        self.gltf.bufferViews.append(view)
        flat = array.reshape(array.shape[0], -1)
        as_number = float if array.dtype == np.float32 else int
        accessor = g.Accessor(
            bufferView=len(self.gltf.bufferViews) - 1,
            componentType=component,
            count=int(array.shape[0]),
            type=kind,
            min=[as_number(v) for v in flat.min(axis=0)],
            max=[as_number(v) for v in flat.max(axis=0)],
        )
        self.gltf.accessors.append(accessor)
        return len(self.gltf.accessors) - 1


def joints_to_gltf(joints: np.ndarray, *, fps: float = 20.0):
    """A :class:`pygltflib.GLTF2` (binary blob attached) for HumanML3D-order joints ``(F, 22, 3)``, metres, Y up."""
    import pygltflib as g

    from .. import __version__

    motion = joints_to_bvh(joints, fps)  # validates the shape; the one rotation solver
    frames = motion.num_frames
    offsets = motion.offsets.copy()
    offsets[0] = 0.0
    # stand the rest pose on the floor: the lowest point of the body (a toe capsule's underside) at y = 0
    lowest = min(_rest_positions(offsets)[BVH_NAMES.index(name), 1] - radius
                 for name, _, _, radius in _END_CAPSULES if name.endswith("Toe"))  # fmt: skip
    offsets[0] = [0.0, -lowest, 0.0]
    rest_world = _rest_positions(offsets)

    gltf = g.GLTF2(asset=g.Asset(generator=f"motiongpt-cli {__version__}", version="2.0"))
    gltf.extras = {"fps": float(fps), "frames": int(frames)}
    blob = _Blob(gltf)
    children = [[c for c, q in enumerate(BVH_PARENTS) if q == j] for j in range(22)]
    gltf.nodes = [
        g.Node(name=name, translation=[float(v) for v in offsets[j]], children=children[j] or [])
        for j, name in enumerate(BVH_NAMES)
    ]
    # inverse bind matrices: rest orientations are the identity, so each is a translation by -rest position
    # (glTF matrices are column-major: the translation is the last four floats)
    ibm = np.tile(np.eye(4, dtype=np.float32), (22, 1, 1))
    ibm[:, 3, :3] = -rest_world
    skin = g.Skin(name="motiongpt", joints=list(range(22)), skeleton=0,
                  inverseBindMatrices=blob.add(ibm.reshape(22, 16), g.MAT4))  # fmt: skip
    gltf.skins = [skin]

    positions, normals, bound, triangles = _body_mesh(rest_world)
    weights = np.zeros((len(positions), 4), np.float32)
    weights[:, 0] = 1.0
    joint_ids = np.zeros((len(positions), 4), np.uint8)
    joint_ids[:, 0] = bound
    attributes = g.Attributes(
        POSITION=blob.add(positions.astype(np.float32), g.VEC3, target=g.ARRAY_BUFFER),
        NORMAL=blob.add(normals.astype(np.float32), g.VEC3, target=g.ARRAY_BUFFER),
        JOINTS_0=blob.add(joint_ids, g.VEC4, target=g.ARRAY_BUFFER),
        WEIGHTS_0=blob.add(weights, g.VEC4, target=g.ARRAY_BUFFER),
    )
    indices = blob.add(triangles.reshape(-1).astype(np.uint16), g.SCALAR, target=g.ELEMENT_ARRAY_BUFFER)
    gltf.materials = [
        g.Material(name="body", doubleSided=False, pbrMetallicRoughness=g.PbrMetallicRoughness(
            baseColorFactor=[0.72, 0.74, 0.78, 1.0], metallicFactor=0.0, roughnessFactor=0.7))
    ]  # fmt: skip
    gltf.meshes = [g.Mesh(name="body", primitives=[g.Primitive(attributes=attributes, indices=indices, material=0)])]
    gltf.nodes.append(g.Node(name="body", mesh=0, skin=0))  # a skinned mesh's own transform is ignored: none
    gltf.scenes = [g.Scene(name="motion", nodes=[0, len(gltf.nodes) - 1])]
    gltf.scene = 0

    times = blob.add((np.arange(frames) / fps).astype(np.float32), g.SCALAR)
    quats = rot.numpy_call(lambda m: rot.quat_fix(rot.matrix_to_quat(m)), motion.rotations)  # (F, 22, 4) wxyz
    samplers, channels = [], []
    translation = motion.translations[:, 0]  # the root's world position (BVH position channels)
    samplers.append(g.AnimationSampler(input=times, output=blob.add(translation.astype(np.float32), g.VEC3),
                                       interpolation="LINEAR"))  # fmt: skip
    channels.append(g.AnimationChannel(sampler=0, target=g.AnimationChannelTarget(node=0, path="translation")))
    for j in range(22):
        xyzw = quats[:, j][:, [1, 2, 3, 0]].astype(np.float32)
        samplers.append(g.AnimationSampler(input=times, output=blob.add(xyzw, g.VEC4), interpolation="LINEAR"))
        channels.append(g.AnimationChannel(sampler=len(samplers) - 1,
                                           target=g.AnimationChannelTarget(node=j, path="rotation")))  # fmt: skip
    gltf.animations = [g.Animation(name="motion", samplers=samplers, channels=channels)]

    gltf.buffers = [g.Buffer(byteLength=len(blob.data))]
    gltf.set_binary_blob(bytes(blob.data))
    return gltf


def write_glb(path: str | Path, joints: np.ndarray, *, fps: float = 20.0, overwrite: bool = False) -> Path:
    """Write a binary glTF of HumanML3D-order joints ``(F, 22, 3)`` (metres, Y up), atomically."""
    gltf = joints_to_gltf(joints, fps=fps)
    with atomic_path(path, overwrite=overwrite) as tmp:
        gltf.save_binary(str(tmp))
    return Path(path)
