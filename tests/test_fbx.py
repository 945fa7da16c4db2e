"""FBX through Blender: re-imported by Blender's FBX importer with 22 bones, every frame and our joint positions;
one clear error line, and nothing left behind, when Blender is missing or fails."""

from __future__ import annotations

import os
import shutil
import stat
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from motiongpt_cli.cli import app
from motiongpt_cli.errors import ToolMissingError
from motiongpt_cli.motion.bvh import BVH_NAMES, BVH_TO_HUMANML3D
from motiongpt_cli.motion.fbx import BlenderError, write_fbx
from test_gltf import blender_dump, imported_heads, pairwise, without_blender


def export(*args: str):
    return CliRunner().invoke(app, ["--no-config", "export", *args])


@pytest.fixture(scope="module")
def fbx_dump(tmp_path_factory, sample_joints) -> dict:
    if shutil.which("blender") is None:
        pytest.skip("blender is not installed (apt-get install blender)")
    fbx = write_fbx(tmp_path_factory.mktemp("fbx") / "012314.fbx", sample_joints, fps=20)
    assert fbx.read_bytes()[:18] == b"Kaydara FBX Binary"
    # imported into a 24 fps scene: the importer takes the file's own frame rate
    return blender_dump(fbx, fps=24)


@pytest.mark.blender
@without_blender
def test_fbx_reimports_with_22_bones_and_all_frames(fbx_dump):
    assert sorted(fbx_dump["bones"]) == sorted(BVH_NAMES)  # no "_end" leaf bones
    assert fbx_dump["frame_count"] == 170 and fbx_dump["fps"] == 20
    assert fbx_dump["meshes"] == 1


@pytest.mark.blender
@without_blender
def test_fbx_joint_positions_match(fbx_dump, sample_joints):
    diff = np.abs(pairwise(imported_heads(fbx_dump)) - pairwise(sample_joints[:, BVH_TO_HUMANML3D])).max()
    assert diff < 2e-3  # metres; measured 0.002 mm


def test_missing_blender_is_one_error_line_and_writes_nothing(tmp_path, monkeypatch, humanml3d_dir):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "out"
    result = export(str(humanml3d_dir / "new_joints" / "012314.npy"), "-f", "npz,glb,fbx", "-o", str(out))
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "blender" in errors[0] and "not found" in errors[0], result.stderr
    assert "Hint: apt-get install blender" in result.stderr
    assert not out.exists() or not any(out.iterdir())  # checked before the .npz and .glb are written


def test_write_fbx_without_blender_raises_tool_missing(tmp_path, monkeypatch, sample_joints):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(ToolMissingError, match="blender"):
        write_fbx(tmp_path / "a.fbx", sample_joints[:5])
    assert list(tmp_path.iterdir()) == []


def test_failing_blender_reports_its_stderr_and_leaves_nothing(tmp_path, monkeypatch, sample_joints):
    fake = tmp_path / "bin" / "blender"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport sys\nprint('Blender 9.9', flush=True)\n"
                    "sys.stderr.write('Traceback (most recent call last):\\nRuntimeError: no GPU for you\\n')\n"
                    "sys.exit(3)\n")  # fmt: skip
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(fake.parent) + os.pathsep + os.environ.get("PATH", ""))
    out = tmp_path / "out"
    with pytest.raises(BlenderError, match=r"exit 3\).*RuntimeError: no GPU for you") as info:
        write_fbx(out / "a.fbx", sample_joints[:5])
    assert "\n" not in str(info.value)
    assert not out.exists() or not any(out.iterdir())
