"""Run inside Blender: import a BVH and dump bone count, frame count and per-frame bone head positions as JSON.

blender -b --factory-startup --python tests/blender_import_bvh.py -- in.bvh out.json
"""

import builtins
import json
import sys

import bpy  # noqa: F401  (only inside Blender)
import io_anim_bvh.import_bvh as import_bvh

# Blender 3.4's importer opens files with mode 'rU', which Python 3.11 rejects: drop the 'U'.
_open = builtins.open


def _open_without_u(file, mode="r", *args, **kwargs):
    return _open(file, mode.replace("U", ""), *args, **kwargs)


import_bvh.open = _open_without_u

src, dst = sys.argv[sys.argv.index("--") + 1 :][:2]
bpy.ops.import_anim.bvh(filepath=src, global_scale=1.0, frame_start=1, use_fps_scale=False, rotate_mode="NATIVE")
armature = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
action = armature.animation_data.action
first, last = (int(v) for v in action.frame_range)
names = [b.name for b in armature.pose.bones]
frames = []
for frame in range(first, last + 1):
    bpy.context.scene.frame_set(frame)
    world = armature.matrix_world
    frames.append([list(world @ armature.pose.bones[n].head) for n in names])
with open(dst, "w") as fh:
    json.dump({"bones": names, "frame_count": last - first + 1, "heads": frames}, fh)
