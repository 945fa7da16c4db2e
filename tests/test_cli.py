"""The command line: start-up cost, error conventions, settings display, and `motiongpt export` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from motiongpt_cli.cli import app

runner = CliRunner()


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None):
    return runner.invoke(app, ["--no-config", *args], input=input, env=env)


def test_help_does_not_import_heavy_packages():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from motiongpt_cli.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('torch', 'open_clip', 'sentence_transformers', 'openai', 'scipy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_installed_console_script_version():
    out = subprocess.run(["motiongpt", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("motiongpt ")


def test_only_working_subcommands_are_registered():
    import typer

    group = typer.main.get_command(app)
    assert sorted(group.list_commands(typer.Context(group))) == ["config", "data", "edit", "evaluate", "export",
                                                                  "generate", "index", "model", "prompt", "train"]
    assert run("--help").exit_code == 0


def test_config_show_reports_sources(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "motiongpt.toml").write_text('[export]\nfps = 30\nformats = ["bvh"]\n')
    result = runner.invoke(app, ["--device", "cpu", "config", "show", "--json"], env={"MOTIONGPT_EXPORT_FPS": "25"})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["export.formats"] == {"value": "bvh", "source": str(tmp_path / "motiongpt.toml")}
    assert data["device"] == {"value": "cpu", "source": "flag"}
    assert data["export.fps"] == {"value": "25", "source": "env MOTIONGPT_EXPORT_FPS"}


def test_bad_config_is_one_error_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[export]\nfpz = 3\n")
    result = runner.invoke(app, ["--config", str(bad), "config", "show"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"Error: {bad}: unknown setting 'export.fpz'"
    assert "Traceback" not in result.output


def test_bad_device_flag():
    result = run("--device", "gpu", "config", "show")
    assert result.exit_code == 1 and "must be one of auto, cpu, cuda" in result.stderr


def test_usage_error_exits_2():
    assert run("export").exit_code == 2
    assert run("export", "--no-such-flag", "x").exit_code == 2


# ----------------------------------------------------------------------------------------------- export
@pytest.fixture()
def sample_path(humanml3d_dir: Path) -> Path:
    return humanml3d_dir / "new_joint_vecs" / "012314.npy"


def test_export_reference_sample(tmp_path, sample_path, sample_joints):
    """The issue's acceptance command: joints in the outputs match new_joints/012314 within 1e-4."""
    from motiongpt_cli.motion.bvh import read_bvh
    from motiongpt_cli.motion.io import load_npz

    out = tmp_path / "out"
    result = run("export", str(sample_path), "--format", "npz,bvh,gif", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["012314.bvh", "012314.gif", "012314.npz"]
    rec = load_npz(out / "012314.npz")
    assert np.abs(rec.joints - sample_joints).max() < 1e-4
    assert rec.features.shape == (170, 263) and rec.fps == 20
    bvh = read_bvh(out / "012314.bvh")
    world = bvh.world_positions()
    assert world.shape == (170, 22, 3)
    from motiongpt_cli.motion.bvh import BVH_TO_HUMANML3D

    assert np.abs(world - sample_joints[:, BVH_TO_HUMANML3D]).max() < 1e-3
    assert abs(bvh.frame_time - 0.05) < 1e-9


def test_export_joints_and_npz_inputs_round_trip(tmp_path, sample_joints):
    from motiongpt_cli.motion.io import load_npz

    joints_path = tmp_path / "clip.npy"
    np.save(joints_path, sample_joints)
    result = run("export", str(joints_path), "-f", "npz", "-o", str(tmp_path / "a"), "--fps", "30")
    assert result.exit_code == 0, result.output
    rec = load_npz(tmp_path / "a" / "clip.npz")
    assert rec.fps == 30 and rec.joints.shape == (170, 22, 3) and rec.features.shape == (170, 263)
    assert np.array_equal(rec.joints, sample_joints)
    # the npz becomes an input in turn; its fps is kept
    result = run("export", str(tmp_path / "a" / "clip.npz"), "-f", "bvh", "-o", str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    assert "30 fps" in result.stdout
    assert "Frame Time: 0.0333333" in (tmp_path / "b" / "clip.bvh").read_text()


def test_export_normalized_features(tmp_path, sample_features, sample_joints, humanml3d_dir):
    from motiongpt_cli.motion.io import load_npz

    mean = np.load(humanml3d_dir / "Mean.npy")
    std = np.load(humanml3d_dir / "Std.npy")
    norm_path = tmp_path / "norm.npy"
    np.save(norm_path, (sample_features - mean) / std)
    args = ["export", str(norm_path), "-f", "npz", "-o", str(tmp_path)]
    result = run(*args)  # forgetting --normalized gives a different (wrong) motion, so we only check the flag path
    result = run(
        *args,
        "--overwrite",
        "--normalized",
        "--mean",
        str(humanml3d_dir / "Mean.npy"),
        "--std",
        str(humanml3d_dir / "Std.npy"),
    )
    assert result.exit_code == 0, result.output
    assert np.abs(load_npz(tmp_path / "norm.npz").joints - sample_joints).max() < 1e-4
    result = run(*args, "--overwrite", "--normalized")
    assert result.exit_code == 1 and "needs both --mean and --std" in result.stderr


def test_export_bad_inputs_are_reported_and_the_rest_converted(tmp_path, sample_path):
    bad_shape = tmp_path / "bad_shape.npy"
    np.save(bad_shape, np.zeros((10, 7), np.float32))
    nan = tmp_path / "nan.npy"
    arr = np.zeros((10, 22, 3), np.float32)
    arr[3, 4, 1] = np.nan
    np.save(nan, arr)
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not a numpy file")
    missing = tmp_path / "missing.npy"
    out = tmp_path / "out"
    result = run(
        "export", str(bad_shape), str(nan), str(sample_path), str(garbage), str(missing), "-f", "bvh", "-o", str(out)
    )
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 4
    for path in (bad_shape, nan, garbage, missing):
        assert any(str(path) in line for line in errors), (path, errors)
    assert "Traceback" not in result.output
    assert (out / "012314.bvh").exists()
    assert sorted(p.name for p in out.iterdir()) == ["012314.bvh"]


def test_export_refuses_to_overwrite(tmp_path, sample_path):
    out = tmp_path / "out"
    assert run("export", str(sample_path), "-f", "bvh", "-o", str(out)).exit_code == 0
    before = (out / "012314.bvh").read_bytes()
    result = run("export", str(sample_path), "-f", "bvh", "-o", str(out))
    assert result.exit_code == 1 and "already exists" in result.stderr and "--overwrite" in result.stderr
    assert (out / "012314.bvh").read_bytes() == before
    assert run("export", str(sample_path), "-f", "bvh", "-o", str(out), "--overwrite").exit_code == 0


def test_export_unknown_format(tmp_path, sample_path):
    result = run("export", str(sample_path), "-f", "bvh,usdz", "-o", str(tmp_path))
    assert result.exit_code == 1
    expected = "Error: unknown format 'usdz' (choose from npz, bvh, gif, mp4, smpl, glb, fbx, obj)"
    assert result.stderr.strip().splitlines()[0] == expected


def test_export_paths_from_stdin_json_and_quiet(tmp_path, sample_path, sample_joints):
    joints_path = tmp_path / "j.npy"
    np.save(joints_path, sample_joints[:40])
    stdin = f"{sample_path}\n# a comment\n\n{joints_path}\n"
    result = run("export", "-", "-f", "bvh", "-o", str(tmp_path / "o"), "--json", input=stdin)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(d["kind"], d["frames"]) for d in lines] == [("features", 170), ("joints", 40)]
    assert lines[0]["outputs"] == {"bvh": str(tmp_path / "o" / "012314.bvh")}
    result = run("--quiet", "export", str(joints_path), "-f", "npz,bvh", "-o", str(tmp_path / "q"))
    assert result.stdout.splitlines() == [str(tmp_path / "q" / "j.npz"), str(tmp_path / "q" / "j.bvh")]


def test_export_same_stem_twice_is_refused(tmp_path, sample_joints):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    np.save(tmp_path / "a" / "x.npy", sample_joints[:30])
    np.save(tmp_path / "b" / "x.npy", sample_joints[:30])
    result = run(
        "export",
        str(tmp_path / "a" / "x.npy"),
        str(tmp_path / "b" / "x.npy"),
        "-f",
        "bvh",
        "-o",
        str(tmp_path / "o"),
        "--overwrite",
    )
    assert result.exit_code == 1 and "would also be written" in result.stderr


def test_export_defaults_come_from_settings(tmp_path, sample_joints, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "m.npy", sample_joints[:30])
    (tmp_path / "motiongpt.toml").write_text('[export]\nformats = ["bvh"]\nfps = 10\n')
    result = runner.invoke(app, ["export", "m.npy", "-o", "o"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["m.bvh"]
    assert "Frame Time: 0.1" in (tmp_path / "o" / "m.bvh").read_text()


def test_export_npz_to_npz_keeps_provenance(tmp_path, sample_features, sample_joints):
    from motiongpt_cli.motion.io import MotionRecord, load_npz, save_npz

    src = save_npz(
        tmp_path / "gen.npz",
        MotionRecord(
            features=sample_features,
            joints=sample_joints,
            fps=20,
            text_high="greet a friend",
            text_low="wave",
            seed=3,
            model="default",
            guidance=2.5,
            steps=50,
        ),
    )
    result = run("export", str(src), "-f", "npz,gif", "-o", str(tmp_path / "o"), "--fps", "30")
    assert result.exit_code == 0, result.output
    rec = load_npz(tmp_path / "o" / "gen.npz")
    assert (rec.text_high, rec.text_low, rec.seed, rec.model, rec.guidance, rec.steps, rec.fps) == (
        "greet a friend",
        "wave",
        3,
        "default",
        2.5,
        50,
        30,
    )


# ----------------------------------------------------------------------------------------------- MDM results.npy
def _write_results(path, joints_list, texts, num_samples, num_reps, T):
    motion = np.zeros((len(joints_list), 22, 3, T), np.float32)
    for i, j in enumerate(joints_list):
        motion[i, :, :, : len(j)] = j.transpose(1, 2, 0)
    np.save(path, {"motion": motion, "text": texts, "lengths": np.array([len(j) for j in joints_list]),
                   "num_samples": num_samples, "num_repetitions": num_reps})  # fmt: skip


def test_export_reads_mdm_results_npy(tmp_path, sample_joints):
    from motiongpt_cli.motion.io import load_npz

    clips = [sample_joints, sample_joints[:120], sample_joints[10:150], sample_joints[:60]]
    texts = ["a person walks", "a person jumps", "a person walks", "a person jumps"]
    _write_results(tmp_path / "results.npy", clips, texts, num_samples=2, num_reps=2, T=196)
    r = run("export", str(tmp_path / "results.npy"), "-f", "npz,bvh", "-o", str(tmp_path / "out"), "--json")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [Path(row["outputs"]["npz"]).name for row in rows] == [
        "a-person-walks-s00-r00.npz", "a-person-jumps-s01-r00.npz", "a-person-walks-s00-r01.npz",
        "a-person-jumps-s01-r01.npz"]  # fmt: skip
    assert [row["frames"] for row in rows] == [170, 120, 140, 60] and {row["kind"] for row in rows} == {"mdm-results"}
    for row, clip, text in zip(rows, clips, texts, strict=True):
        rec = load_npz(row["outputs"]["npz"])
        assert np.array_equal(rec.joints, clip) and rec.text_high == text and rec.features.shape == (len(clip), 263)


def test_export_refuses_a_results_npy_that_would_run_code(tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    header = {"descr": "|O", "fortran_order": False, "shape": ()}
    with open(tmp_path / "results.npy", "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)  # the header of an object array, as np.save writes it
        pickle.dump({"motion": Evil()}, fh, protocol=3)
    r = run("export", str(tmp_path / "results.npy"), "-f", "npz", "-o", str(tmp_path / "out"))
    assert r.exit_code == 1 and not marker.exists()
    assert "refusing to load posix.system" in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
