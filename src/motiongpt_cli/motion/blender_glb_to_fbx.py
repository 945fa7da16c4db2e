"""Run inside Blender (not importable elsewhere): convert our GLB to an FBX with armature, body mesh and animation.

blender -b --factory-startup --python-exit-code 3 --python blender_glb_to_fbx.py -- in.glb out.fbx FPS [NUMPY_DIR]

Used by :func:`motiongpt_cli.motion.fbx.write_fbx`. The glTF keys frame ``i`` at ``i / FPS`` seconds and Blender's
glTF importer places keys at ``seconds * scene fps``, so the scene runs at FPS before the import: key ``i`` lands
on frame ``i`` and the FBX's frame rate is the motion's.

Blender's glTF importer needs numpy. Official Blender builds bundle it; Debian's ``blender`` package does not depend
on ``python3-numpy``. Without it, NUMPY_DIR (the site-packages folder holding the caller's numpy, same Python minor
version) is appended to ``sys.path``: last, so it never shadows Blender's own modules.
"""

import sys

import bpy

args = sys.argv[sys.argv.index("--") + 1 :]
src, dst, fps = args[0], args[1], float(args[2])
try:
    import numpy  # noqa: F401
except ImportError:
    if len(args) > 3:
        sys.path.append(args[3])
    try:
        import numpy  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"Blender's Python has no usable numpy ({exc}); apt-get install python3-numpy") from None

# an empty scene (factory startup has a cube, a camera and a light)
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.fps = max(1, round(fps))
scene.render.fps_base = scene.render.fps / fps

# BLENDER heuristic: each bone points at its child, what retargeting tools (Rokoko, Auto-Rig Pro) expect
bpy.ops.import_scene.gltf(filepath=src, bone_heuristic="BLENDER", import_shading="SMOOTH")
armature = next(o for o in scene.objects if o.type == "ARMATURE")
action = armature.animation_data.action
first, last = (round(v) for v in action.frame_range)
scene.frame_start, scene.frame_end = first, last

bpy.ops.export_scene.fbx(
    filepath=dst,
    check_existing=False,
    object_types={"ARMATURE", "MESH"},
    use_mesh_modifiers=False,
    add_leaf_bones=False,  # leaf bones would add "_end" bones: the skin stays 22 joints
    bake_anim=True,
    bake_anim_use_all_bones=True,
    bake_anim_use_nla_strips=False,
    bake_anim_use_all_actions=False,
    bake_anim_force_startend_keying=True,
    bake_anim_step=1.0,
    bake_anim_simplify_factor=0.0,  # a key on every frame, as in the source: no curve simplification
    path_mode="AUTO",
)
