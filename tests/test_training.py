"""`motiongpt train`: exact resume, DDP equivalence, the model directory, the CLI and its errors."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from conftest import TINY_RUN
from motiongpt_cli.checkpoint import ModelLoadError, load_model
from motiongpt_cli.cli import app
from motiongpt_cli.data.prepare import load_dataset
from motiongpt_cli.errors import MotionGPTError
from motiongpt_cli.lr_schedule import lr_at
from motiongpt_cli.training import run_config_from_dict, train

runner = CliRunner()


def _run(**train_overrides) -> dict:
    cfg = copy.deepcopy(TINY_RUN)
    cfg["train"].update(train_overrides)
    return cfg


@pytest.fixture(scope="module")
def data(tiny_corpus):
    return load_dataset(tiny_corpus)


def _weights(run_dir: Path) -> tuple[dict, dict]:
    """(EMA weights from model.safetensors, raw weights from the train state) of a run directory."""
    ema = load_file(run_dir / "model" / "model.safetensors")
    state = load_file(run_dir / "model" / "train_state.safetensors")
    return ema, state


def test_resume_continues_exactly(data, tmp_path, embedding_cache):
    records, mean, std = data
    cfg = _run(steps=20, checkpoint_every=5)
    whole = train(run_config_from_dict(copy.deepcopy(cfg)), records, mean, std, tmp_path / "whole",
                  cache_dir=embedding_cache)  # fmt: skip
    assert whole.steps == 20
    first = train(run_config_from_dict(copy.deepcopy(cfg)), records, mean, std, tmp_path / "split",
                  cache_dir=embedding_cache, max_steps_this_run=10)  # fmt: skip
    assert first.steps == 10
    second = train(run_config_from_dict(copy.deepcopy(cfg)), records, mean, std, tmp_path / "split",
                   cache_dir=embedding_cache, resume=True)  # fmt: skip
    assert (second.resumed_from, second.steps) == (10, 20)
    for a, b in zip(_weights(tmp_path / "whole"), _weights(tmp_path / "split"), strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    assert second.final_loss == whole.final_loss
    rows = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 21))
    state = json.loads((tmp_path / "split" / "model" / "train_state.json").read_text())
    assert state["step"] == 20


def test_training_reduces_the_loss(data, tmp_path, embedding_cache):
    records, mean, std = data
    losses = []
    train(run_config_from_dict(_run(steps=60, lr=2e-3, warmup_steps=5, checkpoint_every=60)), records, mean, std,
          tmp_path / "r", cache_dir=embedding_cache, on_step=lambda r: losses.append(r.losses["total"]))  # fmt: skip
    assert len(losses) == 60 and all(math.isfinite(v) for v in losses)
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.8 * first, (first, last)


def test_model_directory_loads_strictly(data, tmp_path, embedding_cache):
    records, mean, std = data
    result = train(run_config_from_dict(_run()), records, mean, std, tmp_path / "r", cache_dir=embedding_cache)
    loaded = load_model(result.model_dir)
    assert loaded.model.config.width == 32 and loaded.schedule.num_train_timesteps == 100
    assert loaded.mean.shape == (263,) and loaded.text.high_encoder == "minilm"
    assert load_model(tmp_path / "r").path == loaded.path  # the run folder resolves to its model folder
    cfg = json.loads((result.model_dir / "config.json").read_text())
    cfg["denoiser"]["width"] = 64  # weights no longer fit
    (result.model_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError):
        load_model(result.model_dir)
    with pytest.raises(ModelLoadError):
        load_model(tmp_path / "nowhere")


def test_guards(data, tmp_path, embedding_cache):
    records, mean, std = data
    run = run_config_from_dict(_run())
    train(run, records, mean, std, tmp_path / "r", cache_dir=embedding_cache)
    with pytest.raises(MotionGPTError, match="already holds"):
        train(run_config_from_dict(_run()), records, mean, std, tmp_path / "r", cache_dir=embedding_cache)
    with pytest.raises(MotionGPTError, match="already did 4 of 4"):
        train(run_config_from_dict(_run()), records, mean, std, tmp_path / "r", resume=True)
    with pytest.raises(MotionGPTError, match="nothing to resume"):
        train(run_config_from_dict(_run()), records, mean, std, tmp_path / "empty", resume=True)
    with pytest.raises(MotionGPTError, match="divisible"):
        from motiongpt_cli.training import DistInfo

        train(run_config_from_dict(_run(batch_size=5)), records, mean, std, tmp_path / "d",
              dist=DistInfo(0, 2, 0), cache_dir=embedding_cache)  # fmt: skip
    with pytest.raises(MotionGPTError):
        run_config_from_dict({"train": {"stepz": 3}})
    with pytest.raises(MotionGPTError):
        run_config_from_dict({"train": {"steps": 0}})


def test_sample_gif_every_n_steps(data, tmp_path, embedding_cache):
    records, mean, std = data
    train(run_config_from_dict(_run(sample_every=2)), records, mean, std, tmp_path / "r", cache_dir=embedding_cache)
    gifs = sorted(p.name for p in (tmp_path / "r" / "samples").iterdir())
    assert gifs == ["step-0000002.gif", "step-0000004.gif"]
    from PIL import Image

    with Image.open(tmp_path / "r" / "samples" / gifs[0]) as im:
        assert im.n_frames == 64  # min(max_frames, 120) frames


def test_warmup_schedule():
    cfg = run_config_from_dict(_run(lr=1e-3, warmup_steps=4)).train
    assert [lr_at(s, cfg) for s in range(6)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    # without a decay, a run may stop while still warming up (a smoke run, --steps 1); with one it may not
    short = run_config_from_dict(_run(steps=1, lr=1e-3, warmup_steps=4)).train
    assert lr_at(0, short) == pytest.approx(2.5e-4)
    with pytest.raises(MotionGPTError, match=r"^my\.toml: 'train\.decay_steps' \(1\) does not fit"):
        run_config_from_dict(_run(steps=1, warmup_steps=4, decay_steps=1), "my.toml")


def test_cosine_decay_over_the_last_steps():
    cfg = run_config_from_dict(_run(steps=10, lr=1.0, warmup_steps=2, decay_steps=4, lr_min=0.1)).train
    half_cosine = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert [lr_at(s, cfg) for s in range(10)] == pytest.approx([0.5, 1.0, 1, 1, 1, 1, *half_cosine])
    assert lr_at(8, cfg) == pytest.approx(0.55)  # half-way down: the mean of lr and lr_min
    for bad, message in (({"lr_min": 2.0}, "is above 'train.lr'"), ({"decay_steps": 9}, "does not fit"),
                         ({"decay_steps": -1}, "decay_steps")):  # fmt: skip
        with pytest.raises(MotionGPTError, match=message):
            run_config_from_dict(_run(steps=10, lr=1.0, warmup_steps=2, **bad))


def test_a_decay_added_on_resume_equals_one_trained_with_it(data, tmp_path, embedding_cache):
    """The learning rate depends only on the step and the schedule: a run resumed at step 10 with a decay over its
    last 8 of 20 steps ends exactly as a run configured with that decay from the start."""
    records, mean, std = data
    whole = train(run_config_from_dict(_run(steps=20, checkpoint_every=5, decay_steps=8)), records, mean, std,
                  tmp_path / "whole", cache_dir=embedding_cache)  # fmt: skip
    train(run_config_from_dict(_run(steps=20, checkpoint_every=5)), records, mean, std, tmp_path / "split",
          cache_dir=embedding_cache, max_steps_this_run=10)  # fmt: skip
    with pytest.raises(MotionGPTError, match="before this checkpoint's step 10"):  # the decay would start at 8
        train(run_config_from_dict(_run()), records, mean, std, tmp_path / "split", cache_dir=embedding_cache,
              resume=True, decay_steps=12)  # fmt: skip
    resumed = train(run_config_from_dict(_run()), records, mean, std, tmp_path / "split", cache_dir=embedding_cache,
                    resume=True, decay_steps=8)  # fmt: skip
    rows = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows[:12]] == [5e-4] + [1e-3] * 11  # warm-up, then constant until step 12
    assert rows[-1]["lr"] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))
    for a, b in zip(_weights(tmp_path / "whole"), _weights(tmp_path / "split"), strict=True):
        for k in a:
            assert torch.equal(a[k], b[k]), k
    assert resumed.final_loss == whole.final_loss
    state = json.loads((tmp_path / "split" / "model" / "train_state.json").read_text())
    assert (state["run"]["train"]["decay_steps"], state["run"]["train"]["lr_min"]) == (8, 0.0)
    # extending a run that has decayed would move a decay it already took
    with pytest.raises(MotionGPTError, match="before this checkpoint's step 20"):
        train(run_config_from_dict(_run()), records, mean, std, tmp_path / "split", cache_dir=embedding_cache,
              resume=True, steps=30)  # fmt: skip


def _toml(path: Path, cfg: dict) -> Path:
    lines = []
    for section, values in cfg.items():
        lines.append(f"[{section}]")
        for k, v in values.items():
            lines.append(f"{k} = {json.dumps(v)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_train_resume_and_errors(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    config = _toml(tmp_path / "train.toml", TINY_RUN)
    out = tmp_path / "run"
    base = ["--no-config", "train", "--data", str(tiny_corpus), "--config", str(config), "-o", str(out)]
    r = runner.invoke(app, [*base, "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 4 and summary["final_loss"] > 0
    assert {p.name for p in (out / "model").iterdir()} >= {"config.json", "model.safetensors",
                                                           "normalization.safetensors", "train_state.json"}
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4
    r = runner.invoke(app, base)
    assert r.exit_code != 0 and "already holds a training run" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, [*base, "--resume", "--steps", "6", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["steps"] == 6
    r = runner.invoke(app, [*base, "--resume", "--steps", "8", "--decay-steps", "3"])  # would start at 5 < 6
    assert r.exit_code == 1 and "before this checkpoint's step 6" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, [*base, "--resume", "--steps", "8", "--decay-steps", "2", "--json"])
    assert r.exit_code == 0, r.output
    lrs = [json.loads(x)["lr"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lrs[5] == 1e-3 and lrs[6] == pytest.approx(1e-3) and lrs[7] == pytest.approx(5e-4)
    r = runner.invoke(app, [*base, "--resume", "--steps", "10", "--decay-steps", "-2"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nwidht = 3\n")
    r = runner.invoke(app, ["--no-config", "train", "--data", str(tiny_corpus), "--config", str(bad), "-o",
                            str(tmp_path / "x")])  # fmt: skip
    assert r.exit_code != 0 and "widht" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["--no-config", "train", "--data", str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "y")])
    assert r.exit_code != 0 and "Traceback" not in r.output


@pytest.mark.slow
def test_ddp_two_processes_match_one_process(tiny_corpus, tmp_path, embedding_cache):
    """2 gloo processes with the global batch split in two: identical parameters on both ranks, and the same
    parameters and losses as one process on the whole global batch."""
    worker = Path(__file__).parent / "ddp_worker.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(worker),
           str(tiny_corpus), str(tmp_path), str(embedding_cache)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    for k in r0["params"]:
        assert torch.equal(r0["params"][k], r1["params"][k]), k
    assert r0["losses"] == r1["losses"] and len(r0["losses"]) == TINY_RUN["train"]["steps"]

    records, mean, std = load_dataset(tiny_corpus)
    losses: list[float] = []
    single = train(run_config_from_dict(copy.deepcopy(TINY_RUN)), records, mean, std, tmp_path / "single",
                   cache_dir=embedding_cache, on_step=lambda r: losses.append(r.losses["total"]))  # fmt: skip
    raw = load_file(single.model_dir / "train_state.safetensors")
    assert losses == pytest.approx(r0["losses"], rel=1e-5)
    width, steps, lr = TINY_RUN["model"]["width"], TINY_RUN["train"]["steps"], TINY_RUN["train"]["lr"]
    for k, v in r0["params"].items():
        single_v = raw[f"model.{k}"]
        if k.endswith("self_attn.in_proj_bias"):
            # the key bias cancels in the softmax: its true gradient is 0 and Adam turns float noise (~1e-9) into
            # steps of up to lr, so it only agrees to steps * lr; the query and value biases agree tightly
            key = slice(width, 2 * width)
            assert (single_v[key] - v[key]).abs().max() <= steps * lr
            single_v, v = torch.cat([single_v[:width], single_v[2 * width :]]), torch.cat([v[:width], v[2 * width :]])
        torch.testing.assert_close(single_v, v, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_torchrun_cli_two_processes(tiny_corpus, tmp_path):
    """The documented multi-process command: torchrun -m motiongpt_cli train (gloo on CPU)."""
    config = _toml(tmp_path / "train.toml", TINY_RUN)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MOTIONGPT_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "motiongpt_cli", "--no-config", "train", "--data", str(tiny_corpus), "--config", str(config), "-o",
           str(tmp_path / "run"), "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 4
    assert load_model(tmp_path / "run").model.config.width == 32
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 4  # written by rank 0 only
