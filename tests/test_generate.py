"""`motiongpt generate`: inputs, low-level text modes, seeds, outputs, manifest and errors, on a tiny trained model."""

from __future__ import annotations

import copy
import json
import zlib

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import PROJECT_ROOT, TINY_RUN
from motiongpt_cli.cli import app
from motiongpt_cli.data.prepare import load_dataset, read_records
from motiongpt_cli.motion.features import features_to_joints
from motiongpt_cli.motion.io import load_npz
from motiongpt_cli.text.encoders import load_encoder
from motiongpt_cli.text.index import build_index
from motiongpt_cli.training import run_config_from_dict, train

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_model(tiny_corpus, embedding_cache, tmp_path_factory):
    """(model dir, index path) of a 4-step tiny model trained on the tiny corpus."""
    root = tmp_path_factory.mktemp("tiny-model")
    records, mean, std = load_dataset(tiny_corpus)
    result = train(run_config_from_dict(copy.deepcopy(TINY_RUN)), records, mean, std, root / "run",
                   cache_dir=embedding_cache)  # fmt: skip
    index = build_index(read_records(tiny_corpus), load_encoder("minilm", cache_dir=embedding_cache))
    return result.model_dir, index.save(root / "index.npz")


@pytest.fixture
def gen(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    model, index = tiny_model

    def invoke(*args, input=None):
        base = ["--no-config", "generate", "--model", str(model), "--index", str(index), "--steps", "4"]
        if "--seconds" not in args and "--frames" not in args:
            base += ["--frames", "48"]
        return runner.invoke(app, base + list(args), input=input)

    return invoke


def test_generate_with_given_low_text_writes_complete_files(gen, tmp_path):
    r = gen("greet a friend", "--low", "wave", "-n", "2", "--seed", "7", "-o", str(tmp_path / "a"), "--json")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 2 and {row["low"] for row in rows} == {"wave"} and {row["low_source"] for row in rows} == {
        "user"
    }
    assert rows[0]["seed"] != rows[1]["seed"]
    rec = load_npz(rows[0]["outputs"]["npz"])
    assert rec.features.shape == (48, 263) and rec.joints.shape == (48, 22, 3)
    assert (rec.text_high, rec.text_low, rec.seed, rec.steps, rec.guidance) == ("greet a friend", "wave",
                                                                                rows[0]["seed"], 4, 2.5)  # fmt: skip
    np.testing.assert_allclose(features_to_joints(rec.features), rec.joints, atol=1e-5)
    assert (tmp_path / "a" / "greet-a-friend-00.bvh").read_text().startswith("HIERARCHY")


def test_same_seed_same_motion_and_batch_independence(gen, tmp_path):
    a = gen("a person jumps", "--low", "jump in place", "-n", "3", "--seed", "11", "-o", str(tmp_path / "a"))
    b = gen("a person jumps", "--low", "jump in place", "-n", "3", "--seed", "11", "-o", str(tmp_path / "b"),
            "--batch-size", "1")  # fmt: skip
    c = gen("a person jumps", "--low", "jump in place", "-n", "1", "--seed", "12", "-o", str(tmp_path / "c"))
    assert a.exit_code == b.exit_code == c.exit_code == 0, a.output + b.output + c.output
    for j in range(3):
        fa = load_npz(tmp_path / "a" / f"a-person-jumps-{j:02d}.npz").features
        fb = load_npz(tmp_path / "b" / f"a-person-jumps-{j:02d}.npz").features
        np.testing.assert_allclose(fa, fb, atol=1e-5)
    f0 = load_npz(tmp_path / "a" / "a-person-jumps-00.npz").features
    assert not np.allclose(f0, load_npz(tmp_path / "a" / "a-person-jumps-01.npz").features)
    assert not np.allclose(f0, load_npz(tmp_path / "c" / "a-person-jumps-00.npz").features)


def test_without_low_each_sample_gets_a_proposed_text(gen, tmp_path):
    r = gen("a person waves", "-n", "3", "--seed", "1", "-o", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["low_source"] for row in rows] == ["retrieval"] * 3
    assert all(row["low"] for row in rows) and len({row["low"] for row in rows}) >= 2  # diverse low-level texts
    r = gen("a person waves", "--no-low", "-n", "1", "--seed", "1", "-o", str(tmp_path / "none"), "--json")
    row = json.loads(r.stdout)
    assert row["low"] is None and row["low_source"] == "none"
    assert load_npz(row["outputs"]["npz"]).text_low == ""


def test_texts_from_stdin_in_three_forms(gen, tmp_path):
    lines = "a person walks | walk forward\n# a comment\n{\"high\": \"a person bows\", \"low\": \"bow\"}\njump\n"
    r = gen("-", "--seed", "3", "-o", str(tmp_path), "--json", input=lines)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(row["high"], row["low_source"]) for row in rows] == [
        ("a person walks", "user"), ("a person bows", "user"), ("jump", "retrieval")
    ]  # fmt: skip
    assert rows[0]["low"] == "walk forward" and rows[1]["low"] == "bow"


def test_refuses_to_overwrite_and_loses_nothing(gen, tmp_path):
    r = gen("a person waves", "--low", "wave", "--seed", "1", "-o", str(tmp_path))
    assert r.exit_code == 0
    target = tmp_path / "a-person-waves-00.npz"
    before = target.read_bytes()
    r = gen("a person waves", "--low", "wave", "--seed", "2", "-o", str(tmp_path))
    assert r.exit_code == 1 and "exists" in r.stderr and "Traceback" not in r.output
    assert target.read_bytes() == before
    r = gen("a person waves", "--low", "wave", "--seed", "2", "-o", str(tmp_path), "--overwrite")
    assert r.exit_code == 0 and target.read_bytes() != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_lengths_are_clamped_with_a_warning(gen, tmp_path):
    r = gen("a person waves", "--low", "wave", "--frames", "600", "-o", str(tmp_path), "--json")
    assert r.exit_code == 0 and "outside the model's range" in r.stderr
    assert json.loads(r.stdout)["frames"] == 64  # the tiny model's max_frames


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["  "], 2, "Error: empty text"),
        (["walk", "-n", "0"], 2, "Error: Invalid value for '-n' / '--num-samples': must be an integer >= 1"),
        (["walk", "--low", "wave", "--no-low"], 2, "--low and --no-low exclude each other"),
        (["walk", "--sampler", "euler"], 2, "must be auto, ddim, ddpm or lcm"),
        (["walk", "--format", "usdz"], 1, "Error: unknown format 'usdz'"),
        (["walk", "--low", " "], 2, "Error: Invalid value for --low: an empty low-level text"),
        (["walk", "--steps", "1001"], 2, "Error: Invalid value for '--steps': must be an integer >= 1 and <= 1000"),
        (["walk", "--steps", "101"], 2, "Error: steps must be at most the model's 100 training timesteps, got 101"),
        (["walk", "--seconds", "0"], 2, "Error: Invalid value for '--seconds': must be a finite number > 0"),
        (["walk", "--seconds", "nan"], 2, "Error: Invalid value for '--seconds': must be a finite number > 0 and <= "
                                          "3600, got nan"),
        (["walk", "--guidance", "inf"], 2, "Error: Invalid value for '--guidance'"),
        (["walk", "--eta", "nan"], 2, "Error: Invalid value for '--eta'"),
        (["walk", "--seconds", "2", "--frames", "40"], 2, "--seconds and --frames exclude each other"),
        (["walk", "--seed", "-1"], 2, "Error: Invalid value for '--seed': must be an integer >= 0"),
    ],
)
def test_bad_input_is_one_error_line(gen, tmp_path, args, code, message):
    r = gen(*args, "-o", str(tmp_path))
    assert r.exit_code == code, r.output
    assert message in r.stderr and "Traceback" not in r.output
    assert [line for line in r.stderr.splitlines() if line.startswith("Error:")] == [r.stderr.splitlines()[0]]
    assert not list(tmp_path.iterdir())


def test_seconds_sets_the_length(gen, tmp_path):
    r = gen("walk", "--low", "walk", "--seconds", "2.5", "-o", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["frames"] == 50 and "Warning" not in r.stderr


def test_unknown_model_is_a_clear_error(tmp_path):
    r = runner.invoke(app, ["--no-config", "generate", "walk", "--model", str(tmp_path / "nope"), "-o", str(tmp_path)])
    assert r.exit_code == 1 and "not a model directory" in r.stderr and "Traceback" not in r.output


EMBEDDED = PROJECT_ROOT / "src" / "motiongpt_cli" / "assets" / "default"


def test_the_embedded_default_model_ships_and_generates(tmp_path, monkeypatch):
    """`pip install` + `motiongpt generate "a person waves"` works offline: the package carries the model, its
    normalisation, its retrieval index and its length predictor (and nothing of the training state), small enough for
    PyPI."""
    names = {p.name for p in EMBEDDED.iterdir()}
    assert names == {"config.json", "model.safetensors", "normalization.safetensors", "index.npz", "length.safetensors",
                     "evaluator", "lcm"}
    # the wheel stores the files deflated: what counts is that compressed size (issue 16: the wheel under 40 MB);
    # measured 27.3 MB for the whole wheel with the 44-action model, index and evaluator; 36.8 MB with the distilled
    # student beside them (the assets: 36.5 MB deflated)
    deflated = sum(len(zlib.compress(p.read_bytes(), 6)) for p in EMBEDDED.rglob("*") if p.is_file())
    assert deflated < 39e6, deflated
    assert {p.name for p in (EMBEDDED / "evaluator").iterdir()} == {"config.json", "model.safetensors",
                                                                   "normalization.safetensors"}
    config = json.loads((EMBEDDED / "config.json").read_text())
    assert config["name"] == "motiongpt-default-synthetic" and config["denoiser"]["conditioning"] == "dual"
    assert config["training"]["steps"] >= 1000
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    r = runner.invoke(app, ["--no-config", "generate", "a person waves", "-n", "2", "--seed", "0", "--steps", "5",
                            "--frames", "60", "-o", str(tmp_path), "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["low_source"] for row in rows] == ["retrieval", "retrieval"]
    rec = load_npz(rows[0]["outputs"]["npz"])
    assert rec.features.shape == (60, 263) and np.isfinite(rec.features).all()
    assert rec.model == "motiongpt-default-synthetic"


def test_the_embedded_student_ships_beside_its_teacher(tmp_path, monkeypatch):
    """assets/default/lcm is a consistency student of exactly the shipped weights (re-shipping the teacher without
    distilling again breaks this), with the teacher's normalisation; `--steps 4` samples with it, one forward a step,
    and `--steps 5` with the teacher."""
    from motiongpt_cli.distill import teacher_fingerprint

    student = EMBEDDED / "lcm"
    assert {p.name for p in student.iterdir()} == {"config.json", "model.safetensors", "normalization.safetensors",
                                                   "length.safetensors"}  # fmt: skip
    config = json.loads((student / "config.json").read_text())
    assert config["consistency"]["teacher_sha256"] == teacher_fingerprint(EMBEDDED)
    assert config["consistency"]["guidance"] == 2.5 and config["training"]["steps"] >= 250
    for name in ("normalization.safetensors", "length.safetensors"):
        assert (student / name).read_bytes() == (EMBEDDED / name).read_bytes(), name
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    outs = {}
    for steps in ("4", "5"):
        r = runner.invoke(app, ["--no-config", "generate", "a person waves", "--low", "wave", "-n", "1", "--seed", "0",
                                "--steps", steps, "--frames", "40", "-o", str(tmp_path / steps), "--json"])  # fmt: skip
        assert r.exit_code == 0, r.output
        row = json.loads(r.stdout.splitlines()[0])
        outs[steps] = (row, load_npz(row["outputs"]["npz"]))
    assert outs["4"][0]["sampler"] == "lcm" and outs["5"][0]["sampler"] == "ddim", (outs["4"][0], outs["5"][0])
    assert outs["4"][1].features.shape == (40, 263) and np.isfinite(outs["4"][1].features).all()


def test_a_model_records_its_measured_ddim_default(tiny_model, tmp_path):
    """config.json `sampling.steps` is the model's DDIM default (the embedded model records 50, from bench_steps.py);
    DDPM, an explicit --steps and models without it keep their defaults; a malformed entry is one clear error."""
    import shutil

    from motiongpt_cli.checkpoint import load_model
    from motiongpt_cli.errors import MotionGPTError
    from motiongpt_cli.generation import DEFAULT_STEPS, sampling_options

    model, _ = tiny_model
    plain = load_model(model)
    assert sampling_options(plain).steps == min(DEFAULT_STEPS, plain.schedule.num_train_timesteps)
    embedded = load_model(EMBEDDED)
    assert embedded.config["sampling"] == {"steps": 50} and sampling_options(embedded).steps == 50
    copy_dir = tmp_path / "m"
    shutil.copytree(model, copy_dir)
    config = json.loads((copy_dir / "config.json").read_text())
    for steps, expected in ((3, 3), (10_000, plain.schedule.num_train_timesteps)):
        config["sampling"] = {"steps": steps}
        (copy_dir / "config.json").write_text(json.dumps(config))
        loaded = load_model(copy_dir)
        assert sampling_options(loaded).steps == expected
        assert sampling_options(loaded, sampler="ddim", steps=2).steps == 2
        assert sampling_options(loaded, sampler="ddpm").steps == min(DEFAULT_STEPS, plain.schedule.num_train_timesteps)
    for bad in (0, "ten", 2.5, True):
        config["sampling"] = {"steps": bad}
        (copy_dir / "config.json").write_text(json.dumps(config))
        with pytest.raises(MotionGPTError, match="sampling.steps must be a positive integer"):
            sampling_options(load_model(copy_dir))
