"""The house: exact exit codes and error lines, --debug, the model's own index, high/concat models, the Python API
(on tiny models), and that the CLI package stays thin and import-light."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import PROJECT_ROOT, TINY_RUN
from motiongpt_cli.cli import app
from motiongpt_cli.data.prepare import load_dataset, read_records
from motiongpt_cli.text.index import load_index, training_pairs
from motiongpt_cli.training import run_config_from_dict, train

runner = CliRunner()


def _train(tiny_corpus, cache, root, conditioning="dual"):
    run = copy.deepcopy(TINY_RUN)
    run["model"]["conditioning"] = conditioning
    records, mean, std = load_dataset(tiny_corpus)
    return train(run_config_from_dict(run), records, mean, std, root, cache_dir=cache).model_dir


@pytest.fixture(scope="module")
def models(tiny_corpus, embedding_cache, tmp_path_factory):
    root = tmp_path_factory.mktemp("house")
    return {c: _train(tiny_corpus, embedding_cache, root / c, c) for c in ("dual", "high", "concat")}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))


# ----------------------------------------------------------------------------------------------- the model's index
def test_training_writes_the_models_own_index(models, tiny_corpus):
    index = load_index(models["dual"] / "index.npz")
    pairs = training_pairs(read_records(tiny_corpus))
    assert list(zip(index.high, index.low, strict=True)) == pairs  # exactly the run's training pairs, in order
    assert index.encoder == "minilm" and index.dim == 384
    np.testing.assert_allclose(np.linalg.norm(index.embeddings, axis=1), 1.0, atol=2e-3)  # stored as float16


def test_generate_proposes_from_the_models_own_index(models, tiny_corpus, home, tmp_path):
    lows = {low for _, low in training_pairs(read_records(tiny_corpus))}
    r = runner.invoke(app, ["--no-config", "generate", "a person waves", "-n", "3", "--seed", "0", "--steps", "2",
                            "--frames", "40", "--model", str(models["dual"]), "-o", str(tmp_path),
                            "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "Warning" not in r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert {row["low"] for row in rows} <= lows  # every proposal is one of this model's own training texts


def test_a_model_without_an_index_falls_back_to_the_embedded_one_with_a_warning(models, home, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(models["dual"], bare)
    (bare / "index.npz").unlink()
    r = runner.invoke(app, ["--no-config", "generate", "a person waves", "--seed", "0", "--steps", "2", "--frames",
                            "40", "--model", str(bare), "-o", str(tmp_path / "out"), "--json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    warning = [line for line in r.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warning) == 1 and "has no retrieval index of its own" in warning[0]
    assert "assets/default/index.npz" in warning[0]  # it names the index used
    # --index still overrides, and then nothing is said
    r = runner.invoke(app, ["--no-config", "generate", "a person waves", "--seed", "0", "--steps", "2", "--frames",
                            "40", "--model", str(bare), "--index", str(models["dual"] / "index.npz"),
                            "-o", str(tmp_path / "out2")])  # fmt: skip
    assert r.exit_code == 0 and "Warning" not in r.stderr


def test_a_resumed_run_still_has_its_index(tiny_corpus, embedding_cache, tmp_path):
    run = run_config_from_dict(copy.deepcopy(TINY_RUN))
    records, mean, std = load_dataset(tiny_corpus)
    train(run, records, mean, std, tmp_path / "run", cache_dir=embedding_cache, max_steps_this_run=2)
    train(run, records, mean, std, tmp_path / "run", cache_dir=embedding_cache, resume=True)
    assert len(load_index(tmp_path / "run" / "model" / "index.npz")) == len(training_pairs(records))


# ----------------------------------------------------------------------------------------------- high / concat models
def test_generate_with_high_and_concat_models(models, home, tmp_path):
    base = ["--no-config", "generate", "a person greets a friend", "--seed", "0", "--steps", "2", "--frames", "40",
            "--json"]  # fmt: skip
    r = runner.invoke(app, [*base, "--model", str(models["high"]), "--low", "wave", "-o", str(tmp_path / "h")])
    assert r.exit_code == 0, r.output
    assert "conditioned on the high-level text only; the low-level text is ignored" in r.stderr
    row = json.loads(r.stdout)
    assert row["low"] is None and row["low_source"] == "none"
    r = runner.invoke(app, [*base, "--model", str(models["concat"]), "--low", "wave", "-o", str(tmp_path / "c")])
    assert r.exit_code == 0 and "Warning" not in r.stderr
    assert json.loads(r.stdout)["low"] == "wave"
    a = np.load(tmp_path / "c" / "a-person-greets-a-friend-00.npz")["features"]
    r = runner.invoke(app, [*base, "--model", str(models["concat"]), "--low", "bow", "-o", str(tmp_path / "c2")])
    b = np.load(tmp_path / "c2" / "a-person-greets-a-friend-00.npz")["features"]
    assert not np.allclose(a, b)  # the concat model reads the low-level text


# ----------------------------------------------------------------------------------------------- exits and --debug
def test_unexpected_errors_are_one_line_and_exit_1(monkeypatch, home, tmp_path):
    import motiongpt_cli.api

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(motiongpt_cli.api.Pipeline, "from_pretrained", boom)
    r = runner.invoke(app, ["--no-config", "generate", "walk", "--low", "walk", "-o", str(tmp_path)])
    assert r.exit_code == 1
    assert r.stderr == "Error: unexpected RuntimeError: boom\nHint: run again with --debug for a traceback\n"
    r = runner.invoke(app, ["--no-config", "--debug", "generate", "walk", "--low", "walk", "-o", str(tmp_path)])
    assert isinstance(r.exception, RuntimeError)  # --debug lets it through (the console script prints it)


def test_ctrl_c_exits_130(monkeypatch, home, tmp_path):
    import motiongpt_cli.api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(motiongpt_cli.api.Pipeline, "from_pretrained", interrupted)
    r = runner.invoke(app, ["--no-config", "generate", "walk", "--low", "walk", "-o", str(tmp_path)])
    assert r.exit_code == 130 and r.stderr == "Interrupted.\n"


def test_debug_shows_a_traceback_from_the_console_script(tmp_path):
    cmd = ["motiongpt", "--no-config", "generate", "walk", "--model", str(tmp_path / "missing"), "-o", str(tmp_path)]
    plain = subprocess.run(cmd, capture_output=True, text=True)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.splitlines()[0].startswith("Error: ") and "not a model directory" in plain.stderr
    debug = subprocess.run([cmd[0], "--debug", *cmd[1:]], capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "ModelLoadError" in debug.stderr


@pytest.mark.parametrize(
    ("args", "code", "first_line"),
    [
        (["nosuch"], 2, "Error: No such command 'nosuch'."),
        (["generate", "--no-such-flag"], 2, "Error: No such option: --no-such-flag"),
        (["generate", "walk", "--seconds", "-5"], 2, "Error: Invalid value for '--seconds': must be a finite number"),
        (["prompt", "a person waves", "--temperature", "nan"], 2, "Error: Invalid value for '--temperature': must be a "
                                                                 "finite number >= 0 and <= 2, got nan"),
        (["index", "query", "walk", "-k", "0"], 2, "Error: Invalid value for '-k': must be an integer >= 1"),
        (["train", "--data", "d.jsonl", "-o", "r", "--steps", "inf"], 2, "Error: Invalid value for '--steps'"),
        (["export", "nope.npy"], 1, "Error: nope.npy: "),
    ],
)
def test_exact_exit_codes_and_one_error_line(tmp_path, monkeypatch, args, code, first_line):
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["--no-config", *args])
    assert r.exit_code == code, r.output
    assert r.stderr.splitlines()[0].startswith(first_line), r.stderr
    assert sum(line.startswith("Error:") for line in r.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_settings_errors_come_from_the_one_handler(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[prompt]\ntemperature = nan\n")
    r = runner.invoke(app, ["--config", str(bad), "config", "show"])
    assert r.exit_code == 1
    assert r.stderr == f"Error: {bad}: 'prompt.temperature' must be a finite number >= 0 and <= 2, got nan\n"
    r = runner.invoke(app, ["--debug", "--config", str(bad), "config", "show"])
    assert type(r.exception).__name__ == "SettingsError"


# ----------------------------------------------------------------------------------------------- the Python API
def test_api_generate_matches_the_cli_for_a_seed(models, home, tmp_path):
    from motiongpt_cli import Motion, load_pipeline

    pipe = load_pipeline(models["dual"], device="cpu")
    motions = pipe.generate(["a person waves", "a person jumps"], low=["wave", None], n=2, frames=40, steps=2,
                            seed=5)  # fmt: skip
    assert [type(m) for m in motions] == [Motion] * 4
    assert [(m.text_high, m.low_source) for m in motions] == [("a person waves", "user")] * 2 + [
        ("a person jumps", "retrieval")] * 2  # fmt: skip
    assert all(m.joints.shape == (40, 22, 3) and m.joints.dtype == np.float32 for m in motions)
    r = runner.invoke(app, ["--no-config", "generate", "a person waves", "--low", "wave", "-n", "2", "--frames", "40",
                            "--steps", "2", "--seed", "5", "--model", str(models["dual"]), "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    cli = np.load(tmp_path / "a-person-waves-01.npz")["features"]
    np.testing.assert_allclose(motions[1].features, cli, atol=1e-6)  # the CLI is the API
    path = motions[0].save(tmp_path / "api" / "wave.bvh")
    assert path.read_text().startswith("HIERARCHY")
    with pytest.raises(Exception, match="cannot tell the format"):
        motions[0].save(tmp_path / "wave.xyz")


def test_api_low_modes_and_errors(models, home):
    from motiongpt_cli import InvalidValueError, MotionGPTWarning, load_pipeline

    pipe = load_pipeline(models["dual"], device="cpu")
    (m,) = pipe.generate("a person walks", low=False, frames=40, steps=1, seed=0)
    assert m.text_low == "" and m.low_source == "none"
    assert len(pipe.propose_low("a person waves", n=4, seed=0)) == 4
    assert [len(x) for x in pipe.propose_low(["a", "b"], n=2, seed=0)] == [2, 2]
    for bad in ({"seconds": float("nan")}, {"guidance": float("inf")}, {"n": 0}, {"eta": -0.1}, {"frames": 0},
                {"seed": -1}, {"steps": 101}, {"low": ""}, {"low": ["a", "b"]}, {"batch_size": 0}):  # fmt: skip
        kwargs = {"low": "walk", "steps": 1, **({} if {"seconds", "frames"} & set(bad) else {"frames": 40}), **bad}
        with pytest.raises(InvalidValueError):
            pipe.generate("a person walks", **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (m,) = pipe.generate("a person walks", low="walk", seconds=100, steps=1, seed=0)
    assert m.frames == 64 and [w.category for w in caught] == [MotionGPTWarning]


def test_import_is_light_and_the_cli_modules_are_thin():
    code = ("import sys, motiongpt_cli; from motiongpt_cli import load_pipeline; "
            "print(','.join(m for m in ('torch', 'sentence_transformers', 'open_clip', 'openai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    sizes = {p.name: len(p.read_text().splitlines()) for p in (PROJECT_ROOT / "src/motiongpt_cli/cli").glob("*.py")}
    assert max(sizes.values()) <= 250, sizes
