"""The GLB writer: a valid glTF 2.0 whose node hierarchy and animation reproduce our joints, read back by pygltflib,
by our own forward kinematics over its nodes, and by Blender's glTF importer (a real client)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from typer.testing import CliRunner

from motiongpt_cli.cli import app
from motiongpt_cli.errors import OutputExistsError
from motiongpt_cli.motion.bvh import BVH_NAMES, BVH_TO_HUMANML3D
from motiongpt_cli.motion.gltf import write_glb

without_blender = pytest.mark.skipif(shutil.which("blender") is None,
                                     reason="blender is not installed (apt-get install blender)")  # fmt: skip

# Run inside Blender: import a GLB or FBX into an empty scene at FPS and dump bones, frame range, fps and per-frame
# bone head positions as JSON. Debian's blender has no numpy, which its glTF importer needs: borrow ours (last).
BLENDER_DUMP = """
import json, sys
import bpy
src, dst, fps, numpy_dir = sys.argv[sys.argv.index("--") + 1 :][:4]
try:
    import numpy
except ImportError:
    sys.path.append(numpy_dir)
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.fps = int(fps)
if src.endswith(".fbx"):
    bpy.ops.import_scene.fbx(filepath=src)
else:
    bpy.ops.import_scene.gltf(filepath=src)
armature = next(o for o in scene.objects if o.type == "ARMATURE")
first, last = (round(v) for v in armature.animation_data.action.frame_range)
names = [b.name for b in armature.pose.bones]
heads = []
for frame in range(first, last + 1):
    scene.frame_set(frame)
    heads.append([list(armature.matrix_world @ armature.pose.bones[n].head) for n in names])
meshes = [o for o in scene.objects if o.type == "MESH"]
json.dump({"bones": names, "frame_count": last - first + 1, "fps": scene.render.fps / scene.render.fps_base,
           "meshes": len(meshes), "heads": heads}, open(dst, "w"))
"""


def blender_dump(path: Path, fps: int = 20) -> dict:
    """What Blender's importer makes of a GLB or FBX (scene at ``fps`` before the import)."""
    script = path.with_name("blender_dump.py")
    script.write_text(BLENDER_DUMP)
    out = path.with_suffix(".json")
    numpy_dir = str(Path(np.__file__).parents[1])
    cmd = ["blender", "-b", "--factory-startup", "--python-exit-code", "3", "--python", str(script), "--",
           str(path), str(out), str(fps), numpy_dir]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.exists(), result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(out.read_text())


def pairwise(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, :, None] - points[:, None, :], axis=-1)


def imported_heads(dump: dict) -> np.ndarray:
    """Blender's bone heads ``(F, 22, 3)`` in BVH order."""
    return np.array(dump["heads"])[:, [dump["bones"].index(name) for name in BVH_NAMES]]


# ----------------------------------------------------------------------------------------------- reading the GLB
def accessor_array(gltf: pygltflib.GLTF2, index: int) -> np.ndarray:
    accessor = gltf.accessors[index]
    view = gltf.bufferViews[accessor.bufferView]
    dtype = {pygltflib.FLOAT: np.float32, pygltflib.UNSIGNED_SHORT: np.uint16, pygltflib.UNSIGNED_BYTE: np.uint8,
             pygltflib.UNSIGNED_INT: np.uint32}[accessor.componentType]  # fmt: skip
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}[accessor.type]
    start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
    data = np.frombuffer(gltf.binary_blob(), dtype, accessor.count * width, start)
    return data.reshape(accessor.count, width)


def quat_xyzw_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = (q / np.linalg.norm(q, axis=-1, keepdims=True)).T
    m = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
         2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
         2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]  # fmt: skip
    return np.stack(m, axis=-1).reshape(-1, 3, 3)


def evaluate_nodes(gltf: pygltflib.GLTF2, frames: int) -> dict[int, np.ndarray]:
    """World positions ``(frames, 3)`` of every node of the scene at each animation key: the glTF's node TRS
    with the animation's channels applied (our own FK, independent of the writer)."""
    translation = {i: np.tile(np.array(n.translation or [0, 0, 0], float), (frames, 1)) for i, n in
                   enumerate(gltf.nodes)}  # fmt: skip
    rotation = {i: np.tile(quat_xyzw_to_matrix(np.array([n.rotation or [0, 0, 0, 1]], float)), (frames, 1, 1))
                for i, n in enumerate(gltf.nodes)}  # fmt: skip
    animation = gltf.animations[0]
    for channel in animation.channels:
        values = accessor_array(gltf, animation.samplers[channel.sampler].output).astype(np.float64)
        if channel.target.path == "rotation":
            rotation[channel.target.node] = quat_xyzw_to_matrix(values)
        elif channel.target.path == "translation":
            translation[channel.target.node] = values
    positions: dict[int, np.ndarray] = {}

    def visit(node: int, parent_rotation: np.ndarray, parent_position: np.ndarray) -> None:
        positions[node] = parent_position + np.einsum("fab,fb->fa", parent_rotation, translation[node])
        for child in gltf.nodes[node].children or []:
            visit(child, parent_rotation @ rotation[node], positions[node])

    for root in gltf.scenes[gltf.scene].nodes:
        visit(root, np.tile(np.eye(3), (frames, 1, 1)), np.zeros((frames, 3)))
    return positions


def evaluate_nodes_rest(gltf: pygltflib.GLTF2) -> dict[int, np.ndarray]:
    positions: dict[int, np.ndarray] = {}

    def visit(node: int, origin: np.ndarray) -> None:
        n = gltf.nodes[node]
        assert n.rotation in (None, [0, 0, 0, 1]) and n.scale in (None, [1, 1, 1])
        positions[node] = origin + np.array(n.translation or [0, 0, 0], float)
        for child in n.children or []:
            visit(child, positions[node])

    visit(gltf.skins[0].joints[0], np.zeros(3))
    return positions


@pytest.fixture(scope="module")
def glb(tmp_path_factory, sample_joints) -> Path:
    return write_glb(tmp_path_factory.mktemp("glb") / "012314.glb", sample_joints, fps=20)


@pytest.fixture(scope="module")
def gltf(glb) -> pygltflib.GLTF2:
    return pygltflib.GLTF2().load(str(glb))


def test_glb_is_valid_gltf(glb, gltf, sample_joints):
    assert glb.read_bytes()[:4] == b"glTF" and gltf.asset.version == "2.0"
    (skin,) = gltf.skins
    assert len(skin.joints) == 22 and [gltf.nodes[j].name for j in skin.joints] == list(BVH_NAMES)
    (animation,) = gltf.animations
    assert len(animation.samplers) == 23 and len(animation.channels) == 23  # 22 rotations + the root translation
    paths = sorted((c.target.node, c.target.path) for c in animation.channels)
    assert paths == sorted([(j, "rotation") for j in skin.joints] + [(skin.joints[0], "translation")])
    frames = sample_joints.shape[0]
    for sampler in animation.samplers:
        times = accessor_array(gltf, sampler.input)[:, 0]
        assert sampler.interpolation == "LINEAR" and len(times) == frames == 170
        np.testing.assert_allclose(times, np.arange(frames) / 20, atol=1e-6)
        assert gltf.accessors[sampler.output].count == frames
    for index, accessor in enumerate(gltf.accessors):
        assert accessor.min is not None and accessor.max is not None
        data = accessor_array(gltf, index)
        np.testing.assert_allclose(data.min(axis=0), accessor.min, rtol=1e-6)
        np.testing.assert_allclose(data.max(axis=0), accessor.max, rtol=1e-6)
    (mesh_node,) = [n for n in gltf.nodes if n.mesh is not None]
    assert mesh_node.skin == 0
    (primitive,) = gltf.meshes[mesh_node.mesh].primitives
    joints = accessor_array(gltf, primitive.attributes.JOINTS_0)
    weights = accessor_array(gltf, primitive.attributes.WEIGHTS_0)
    assert joints.max() < 22 and np.allclose(weights.sum(axis=1), 1.0)
    assert len(np.unique(joints[:, 0])) >= 17  # every moving bone carries a piece of the body


def test_glb_inverse_bind_matrices_match_rest_pose(gltf):
    skin = gltf.skins[0]
    ibm = accessor_array(gltf, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)  # column-major
    rest = evaluate_nodes_rest(gltf)
    for k, joint in enumerate(skin.joints):
        np.testing.assert_allclose(ibm[k][:3, :3], np.eye(3), atol=1e-6)
        np.testing.assert_allclose(ibm[k][:3, 3], -rest[joint], atol=1e-6)
    assert min(p[1] for p in rest.values()) >= -1e-6  # the rest pose stands on the floor


def test_glb_node_animation_reproduces_joints(gltf, sample_joints):
    positions = evaluate_nodes(gltf, sample_joints.shape[0])
    ours = np.stack([positions[j] for j in gltf.skins[0].joints], axis=1)
    error = np.linalg.norm(ours - sample_joints[:, BVH_TO_HUMANML3D], axis=-1)
    assert error.max() < 2e-3  # metres; measured 0.002 mm (float32 on top of the BVH solver)
    assert error.max() < 1e-5


def test_write_glb_is_atomic_and_refuses_to_overwrite(tmp_path, sample_joints):
    target = write_glb(tmp_path / "a.glb", sample_joints[:10], fps=20)
    before = target.read_bytes()
    with pytest.raises(OutputExistsError):
        write_glb(target, sample_joints[:20], fps=20)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["a.glb"]
    write_glb(target, sample_joints[:20], fps=30, overwrite=True)
    gltf = pygltflib.GLTF2().load(str(target))
    assert gltf.accessors[gltf.animations[0].samplers[0].input].max == [pytest.approx(19 / 30)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.glb"]


def test_export_glb_through_the_cli(tmp_path, humanml3d_dir):
    result = CliRunner().invoke(app, ["--no-config", "export", str(humanml3d_dir / "new_joints" / "012314.npy"),
                                      "-f", "glb", "-o", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["012314.glb"]
    assert len(pygltflib.GLTF2().load(str(tmp_path / "out" / "012314.glb")).skins[0].joints) == 22


# ----------------------------------------------------------------------------------------------- Blender
@pytest.fixture(scope="module")
def blender_glb(glb) -> dict:
    return blender_dump(glb)


@pytest.mark.blender
@without_blender
def test_blender_imports_glb_with_22_bones_and_all_frames(blender_glb):
    assert sorted(blender_glb["bones"]) == sorted(BVH_NAMES)
    assert blender_glb["frame_count"] == 170 and blender_glb["meshes"] == 1


@pytest.mark.blender
@without_blender
def test_blender_glb_joint_positions_match(blender_glb, sample_joints):
    heads = imported_heads(blender_glb)
    # per-frame distances between all joint pairs: independent of Blender's Z-up axis conversion
    diff = np.abs(pairwise(heads) - pairwise(sample_joints[:, BVH_TO_HUMANML3D])).max()
    assert diff < 2e-3  # metres; measured 0.002 mm
