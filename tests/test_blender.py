"""Blender (a real BVH client) imports our BVH of 012314 faithfully."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from motiongpt_cli.motion.bvh import BVH_NAMES, BVH_TO_HUMANML3D, write_bvh

pytestmark = [
    pytest.mark.blender,
    pytest.mark.skipif(shutil.which("blender") is None, reason="blender is not installed (apt-get install blender)"),
]
SCRIPT = Path(__file__).with_name("blender_import_bvh.py")


@pytest.fixture(scope="module")
def imported(tmp_path_factory, sample_joints):
    folder = tmp_path_factory.mktemp("blender")
    bvh = write_bvh(folder / "012314.bvh", sample_joints)
    out = folder / "import.json"
    cmd = ["blender", "-b", "--factory-startup", "--python", str(SCRIPT), "--", str(bvh), str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert out.exists(), result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(out.read_text())


def _pairwise(points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(points[:, :, None] - points[:, None, :], axis=-1)


def test_bone_and_frame_counts(imported):
    assert len(imported["bones"]) == 22 and sorted(imported["bones"]) == sorted(BVH_NAMES)
    assert imported["frame_count"] == 170


def test_imported_joint_positions_match(imported, sample_joints):
    order = [imported["bones"].index(name) for name in BVH_NAMES]
    heads = np.array(imported["heads"])[:, order]
    ours = sample_joints[:, BVH_TO_HUMANML3D]
    # per-frame distances between all joint pairs: independent of Blender's axis conversion
    diff = np.abs(_pairwise(heads) - _pairwise(ours)).max()
    assert diff < 2e-3  # metres
