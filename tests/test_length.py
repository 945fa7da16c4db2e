"""Length from text: the predictor's fit, its storage in a model directory, and generate's use of it."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from motiongpt_cli.errors import MotionGPTError, MotionGPTWarning
from motiongpt_cli.length import (
    LENGTH_FILE,
    LengthPredictor,
    add_length_predictor,
    fit_length_predictor,
    length_pairs,
    load_length_predictor,
)


class _FakeEncoder:
    """Embeds a caption as a one-hot of its action word: lengths are then a function of the text."""

    name = "fake"
    words = ("walk", "jump", "wave", "sit")

    def encode(self, texts):
        return np.array([[float(w in t) for w in self.words] + [1.0] for t in texts], dtype=np.float32)


def _records(rng):
    frames = {"walk": 160, "jump": 60, "wave": 80, "sit": 120}
    records = []
    for i in range(200):
        word = _FakeEncoder.words[i % 4]
        n = int(frames[word] * np.exp(rng.normal(0, 0.05)))
        split = ("train", "train", "train", "val", "test")[i % 5]
        records.append({"id": str(i), "split": split, "high": [f"a person does {word}", f"{word} now"], "start": 0,
                        "end": n})  # fmt: skip
    return records


def test_fit_learns_lengths_that_depend_on_the_text_and_beats_a_constant():
    records = _records(np.random.default_rng(0))
    predictor = fit_length_predictor(_FakeEncoder(), records, min_frames=40, max_frames=196)
    got = predictor.frames(_FakeEncoder().encode(["walk please", "jump high", "wave", "sit"]))
    np.testing.assert_allclose(got, [160, 60, 80, 120], rtol=0.06)
    m = predictor.metrics
    assert m["split"] == "test" and m["pairs"] == 80
    assert m["mae_seconds"] < 0.3 * m["constant_mae_seconds"] and m["log_rmse"] < m["constant_log_rmse"]
    assert 0 < predictor.sigma < 0.2  # the 5% spread of the data, in log-frames
    # clamped to the model's range
    short = LengthPredictor(np.array([0, 0, 0, 0, 0, np.log(10.0)]), 0.1, "fake", 40, 196)
    assert short.frames(np.zeros((1, 5))).tolist() == [40]
    with pytest.raises(MotionGPTError, match="5-d"):
        short.frames(np.zeros((1, 3)))
    with pytest.raises(MotionGPTError, match="train and val"):
        fit_length_predictor(_FakeEncoder(), [r for r in records if r["split"] == "train"], min_frames=40,
                             max_frames=196)  # fmt: skip
    assert len(length_pairs(records, "val")[0]) == 80


def test_stored_in_a_model_directory_and_used_by_generate(eval_models, eval_corpus, tmp_path, monkeypatch):
    from motiongpt_cli.api import load_pipeline
    from motiongpt_cli.checkpoint import read_config
    from motiongpt_cli.cli import app

    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    model = tmp_path / "model"
    shutil.copytree(eval_models[1], model)
    trained = read_config(model)
    assert (model / LENGTH_FILE).is_file() and trained["length"]["encoder"] == "minilm"  # `train` wrote one
    (model / LENGTH_FILE).unlink()
    del trained["length"]
    (model / "config.json").write_text(json.dumps(trained))
    pipe = load_pipeline(model, device="cpu")
    with pytest.warns(MotionGPTWarning, match="no length predictor"):
        plan = pipe.plan("a person walks", low="walk", steps=2)
    assert plan.jobs[0].frames is None and plan.frames == 64  # 6 s, clamped to the tiny model's 64

    runner = CliRunner()
    result = runner.invoke(app, ["--no-config", "model", "fit-length", str(model), "--data", str(eval_corpus),
                                 "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["mae_seconds"] > 0 and report["pairs"] > 0
    predictor = load_length_predictor(model, read_config(model))
    assert predictor.min_frames == 40 and predictor.max_frames == 64
    pipe = load_pipeline(model, device="cpu")
    texts = ["a person walks", "a person jumps in place"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", MotionGPTWarning)  # no warning now
        predicted = pipe.predict_frames(texts)
        plan = pipe.plan(texts, low="walk", n=2, steps=2, seed=0)
    assert [job.frames for job in plan.jobs] == [predicted[0]] * 2 + [predicted[1]] * 2
    motions = list(pipe.run(plan))
    assert [m.frames for m in motions] == [job.frames for job in plan.jobs]
    (fixed,) = pipe.generate("a person walks", low="walk", frames=48, steps=2, seed=0)
    assert fixed.frames == 48  # a given length wins

    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    (broken / LENGTH_FILE).write_bytes(b"not safetensors")
    with pytest.raises(MotionGPTError, match="length predictor cannot be read"):
        load_pipeline(broken, device="cpu").predict_frames(["x"])
    result = runner.invoke(app, ["--no-config", "model", "fit-length", str(tmp_path / "nothing"), "--data",
                                 str(eval_corpus)])  # fmt: skip
    assert result.exit_code != 0 and "Error:" in result.stderr and "Traceback" not in result.output


def test_add_replaces_an_old_predictor(eval_models, tmp_path):
    from motiongpt_cli.checkpoint import read_config

    model = tmp_path / "model"
    shutil.copytree(eval_models[1], model)
    predictor = LengthPredictor(np.arange(385, dtype=np.float64) / 1000, 0.3, "minilm", 40, 64, 0.1, {"x": 1})
    add_length_predictor(model, predictor)
    again = load_length_predictor(model, read_config(model))
    np.testing.assert_array_equal(again.weight, predictor.weight)
    assert again.sigma == pytest.approx(0.3) and again.metrics == {"x": 1}
    assert not [p for p in model.iterdir() if p.name.startswith(".")]  # no temporary files left
