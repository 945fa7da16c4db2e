"""Consistency distillation (`motiongpt train --distill`) and the lcm sampler, at tiny size."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from conftest import TINY_RUN
from motiongpt_cli.checkpoint import load_model
from motiongpt_cli.cli import app
from motiongpt_cli.data.prepare import load_dataset
from motiongpt_cli.diffusion.sampler import SamplingOptions, guided_x0, sample
from motiongpt_cli.diffusion.schedule import (
    DDIMScheduler,
    LCMScheduler,
    NoiseSchedule,
    consistency_grid,
    consistency_scalings,
)
from motiongpt_cli.distill import DistillConfig, _teacher_step, distill, load_distill_config
from motiongpt_cli.errors import MotionGPTError
from motiongpt_cli.generation import resolve_sampler, sampling_options
from motiongpt_cli.training import run_config_from_dict, train

runner = CliRunner()
TINY_DISTILL = dict(steps=6, batch_size=4, lr=1e-3, warmup_steps=2, checkpoint_every=2, log_every=1)


@pytest.fixture(scope="module")
def data(tiny_corpus):
    return load_dataset(tiny_corpus)


@pytest.fixture(scope="module")
def teacher(data, tmp_path_factory, embedding_cache):
    records, mean, std = data
    cfg = copy.deepcopy(TINY_RUN)
    cfg["train"]["steps"] = 6
    return train(run_config_from_dict(cfg), records, mean, std, tmp_path_factory.mktemp("teacher"),
                 cache_dir=embedding_cache).model_dir  # fmt: skip


@pytest.fixture(scope="module")
def student(teacher, data, tmp_path_factory, embedding_cache):
    out = tmp_path_factory.mktemp("student")
    distill(teacher, data[0], out, DistillConfig(**TINY_DISTILL), cache_dir=embedding_cache)
    return out / "model"


def test_scalings_grid_and_lcm_timesteps():
    c_skip, c_out = consistency_scalings(torch.tensor([0, 20, 999]))
    assert c_skip[0] == 1 and c_out[0] == 0  # f(x, 0) = x: the boundary condition
    assert c_skip[1] < 1e-5 and abs(float(c_out[1]) - 1) < 1e-5
    grid = consistency_grid(1000)
    assert len(grid) == 50 and grid[0] == 999 and grid[-1] == 0 and grid == sorted(grid, reverse=True)
    assert consistency_grid(100) == [round(99 - 99 * i / 49) for i in range(50)]
    lcm = LCMScheduler(NoiseSchedule(1000))
    assert lcm.set_timesteps(1) == [999]
    four = lcm.set_timesteps(4)
    assert len(four) == 4 and four[0] == 999 and 0 not in four and all(t in grid for t in four)
    with pytest.raises(MotionGPTError, match="1 to 49 steps"):
        lcm.set_timesteps(50)
    # the last step returns the prediction; earlier steps noise it afresh to the next timestep
    x0 = torch.randn(2, 5, 3)
    assert torch.equal(lcm.step(x0, four[-1], torch.zeros_like(x0)), x0)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    abar = lcm.schedule.alpha_bar(four[1])
    expected = math.sqrt(abar) * x0 + math.sqrt(1 - abar) * z
    assert torch.allclose(lcm.step(x0, four[0], torch.zeros_like(x0), g), expected, atol=1e-6)


def test_teacher_step_is_a_guided_ddim_step(teacher):
    """The distillation target's solver step equals the sampler's own guided DDIM step, per sample timestep."""
    loaded = load_model(teacher)
    torch.manual_seed(0)
    B, T, F = 3, 10, loaded.model.config.feature_dim
    x = torch.randn(B, T, F)
    high, low = torch.randn(B, 384), torch.randn(B, 384)
    mask = torch.ones(B, T, dtype=torch.bool)
    keep = torch.tensor([True, False, True])
    grid = consistency_grid(loaded.schedule.num_train_timesteps)
    t, s = torch.tensor([grid[0], grid[10], grid[-2]]), torch.tensor([grid[1], grid[11], grid[-1]])
    got = _teacher_step(loaded.model, loaded.schedule, x, t, s, high, low, mask, keep, 2.5)
    options = SamplingOptions(steps=50, guidance=2.5)
    ddim = DDIMScheduler(loaded.schedule)
    ddim.set_timesteps(len(grid))
    for i in range(B):
        x0 = guided_x0(loaded.model, x[i : i + 1], int(t[i]), high[i : i + 1], low[i : i + 1], mask[i : i + 1],
                       keep[i : i + 1], options)  # fmt: skip
        want = ddim.step(x0, int(t[i]), x[i : i + 1])
        assert float((got[i : i + 1] - want.detach()).abs().max()) < 1e-5, i


def test_resume_continues_exactly(teacher, data, tmp_path, embedding_cache):
    records = data[0]
    whole = distill(teacher, records, tmp_path / "whole", DistillConfig(**TINY_DISTILL), cache_dir=embedding_cache)
    first = distill(teacher, records, tmp_path / "split", DistillConfig(**TINY_DISTILL), cache_dir=embedding_cache,
                    max_steps_this_run=3)  # fmt: skip
    assert first.steps == 3
    # on resume the run's own configuration is used, not the one passed
    second = distill(teacher, records, tmp_path / "split", DistillConfig(lr=0.5), resume=True,
                     cache_dir=embedding_cache)  # fmt: skip
    assert (second.resumed_from, second.steps) == (3, 6)
    for name in ("model.safetensors", "train_state.safetensors"):
        a, b = (load_file(p / "model" / name) for p in (tmp_path / "whole", tmp_path / "split"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert second.final_loss == whole.final_loss
    rows = [json.loads(x) for x in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 7)) and all(r["loss_consistency"] >= 0 for r in rows)
    # more steps extend the run; a finished run refuses to go on without them
    with pytest.raises(MotionGPTError, match="already did 6 of 6"):
        distill(teacher, records, tmp_path / "split", resume=True, cache_dir=embedding_cache)
    assert distill(teacher, records, tmp_path / "split", resume=True, steps=7, cache_dir=embedding_cache).steps == 7


def _self_inconsistency(model_dir, teacher_dir, records) -> float:
    """Mean squared gap between ``f(x_t, t)`` and ``f(x_s, s)`` over grid neighbours on fixed clips and noise, with
    ``x_s`` the teacher's guided DDIM step from ``x_t``: what consistency distillation drives to zero."""
    from motiongpt_cli.data.dataset import DualTextDataset
    from motiongpt_cli.distill import _consistency, _teacher_run
    from motiongpt_cli.training_data import TextTables

    teacher, m = load_model(teacher_dir), load_model(model_dir)
    ds = DualTextDataset(records, teacher.mean, teacher.std, split="train", low_source="gt", max_frames=64, seed=0)
    tables = TextTables(_teacher_run(teacher), ds, device="cpu", cache_dir=None)
    items = [ds[i] for i in range(min(16, len(ds)))]
    x0, mask = torch.stack([it["motion"] for it in items]), torch.stack([it["mask"] for it in items])
    high, low = tables.lookup([it["high"] for it in items], [it["low"] for it in items])
    grid = torch.tensor(consistency_grid(teacher.schedule.num_train_timesteps))
    keep, g, total = torch.ones(len(items), dtype=torch.bool), torch.Generator().manual_seed(123), 0.0
    with torch.no_grad():
        for n in range(0, len(grid) - 1, 4):
            t, s = grid[n].repeat(len(items)), grid[n + 1].repeat(len(items))
            x_t = teacher.schedule.add_noise(x0, torch.randn(x0.shape, generator=g), t)
            x_s = _teacher_step(teacher.model, teacher.schedule, x_t, t, s, high, low, mask, keep, 2.5)
            a = _consistency(m.model, x_t, t, high, low, mask, keep)
            total += float(((a - _consistency(m.model, x_s, s, high, low, mask, keep)) ** 2).mean())
    return total


def test_distillation_learns(teacher, data, tmp_path, embedding_cache):
    """The student becomes self-consistent along the teacher's guided trajectories: the gap the loss targets falls
    well below the undistilled copy's (the teacher itself; measured 0.319 -> 0.258 at 150 steps)."""
    cfg = DistillConfig(steps=150, batch_size=8, lr=3e-3, warmup_steps=5, checkpoint_every=150, log_every=10)
    distill(teacher, data[0], tmp_path / "run", cfg, cache_dir=embedding_cache)
    before = _self_inconsistency(teacher, teacher, data[0])
    after = _self_inconsistency(tmp_path / "run" / "model", teacher, data[0])
    assert after < 0.9 * before, (before, after)


def test_student_directory_and_lcm_sampling(student, teacher):
    loaded = load_model(student)
    t_loaded = load_model(teacher)
    entry = loaded.config["consistency"]
    assert entry["guidance"] == 2.5 and entry["grid"] == 50 and entry["steps"] == 4
    assert (student / "index.npz").is_file()  # the teacher's retrieval index travels with the student
    assert (loaded.mean == t_loaded.mean).all() and (loaded.std == t_loaded.std).all()
    options = sampling_options(loaded)
    assert (options.sampler, options.steps, options.guidance) == ("lcm", 4, 2.5)
    assert sampling_options(t_loaded).sampler == "ddim"
    for bad, match in ((dict(sampler="ddim"), "samples with lcm"), (dict(guidance=3.0), "guidance 2.5 built in")):
        with pytest.raises(MotionGPTError, match=match):
            sampling_options(loaded, **bad)
    with pytest.raises(MotionGPTError, match="needs a distilled model"):
        resolve_sampler(t_loaded, "lcm")
    # one lcm step is f(x_T, T-1) from one conditional forward
    high, low = torch.randn(2, 384), torch.randn(2, 384)
    lengths = torch.tensor([12, 12])
    one = SamplingOptions(steps=1, sampler="lcm", guidance=2.5)
    noise = [torch.randn(2, 12, 263, generator=torch.Generator().manual_seed(3)), torch.zeros(2, 12, 263)]
    got = sample(loaded.model, loaded.schedule, high, low, lengths, one, noise=noise)
    T = loaded.schedule.num_train_timesteps - 1
    c_skip, c_out = consistency_scalings(torch.tensor(float(T)))
    keep = torch.ones(2, dtype=torch.bool)
    with torch.no_grad():
        raw = loaded.model(noise[0], torch.full((2,), T), high, low, torch.ones(2, 12, dtype=torch.bool), keep, keep)
    assert torch.allclose(got, c_skip * noise[0] + c_out * raw, atol=1e-6)
    # four steps: deterministic for the seeds, finite, the requested shape
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    a = sample(loaded.model, loaded.schedule, high, low, lengths, options, gens)
    b = sample(loaded.model, loaded.schedule, high, low, lengths, options, [torch.Generator().manual_seed(i)
                                                                          for i in range(2)])  # fmt: skip
    assert a.shape == (2, 12, 263) and torch.equal(a, b) and bool(torch.isfinite(a).all())


def test_distill_guards(teacher, student, data, tmp_path, embedding_cache):
    records = data[0]
    with pytest.raises(MotionGPTError, match="already a distilled"):
        distill(student, records, tmp_path / "again", DistillConfig(**TINY_DISTILL), cache_dir=embedding_cache)
    with pytest.raises(MotionGPTError, match="nothing to resume"):
        distill(teacher, records, tmp_path / "none", resume=True, cache_dir=embedding_cache)
    with pytest.raises(MotionGPTError, match="already holds a run"):
        distill(teacher, records, student.parent, DistillConfig(**TINY_DISTILL), cache_dir=embedding_cache)
    # a distillation cannot be resumed as a training run, and a training run not as a distillation
    from motiongpt_cli.training import load_run_config

    with pytest.raises(MotionGPTError, match="holds a distillation"):
        train(load_run_config(None), records, *data[1:], student.parent, resume=True, cache_dir=embedding_cache)
    with pytest.raises(MotionGPTError, match="not a distillation"):
        distill(teacher, records, teacher.parent, resume=True, cache_dir=embedding_cache)
    for bad, match in ((dict(steps=0), "distill.steps"), (dict(ema_decay=1.0), "distill.ema_decay"),
                       (dict(guidance="x"), "must be a number")):  # fmt: skip
        with pytest.raises(MotionGPTError, match=match):
            DistillConfig(**bad)
    toml = tmp_path / "d.toml"
    toml.write_text("[distill]\nsteps = 10\nguidance = 3\n")
    assert (load_distill_config(toml).steps, load_distill_config(toml).guidance) == (10, 3.0)
    toml.write_text("[model]\nwidth = 8\n")
    with pytest.raises(MotionGPTError, match="only a \\[distill\\] table"):
        load_distill_config(toml)
    toml.write_text("[distill]\nstepz = 10\n")
    with pytest.raises(MotionGPTError, match="unknown key 'distill.stepz'"):
        load_distill_config(toml)


def test_cli_distill_generate_and_errors(teacher, tiny_corpus, tmp_path):
    out = tmp_path / "lcm"
    base = ["--quiet", "train", "--distill", str(teacher), "--data", str(tiny_corpus), "-o", str(out)]
    r = runner.invoke(app, [*base, "--steps", "2", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["steps"] == 2
    r = runner.invoke(app, [*base, "--steps", "3", "--resume"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["--quiet", "train", "--data", str(tiny_corpus), "-o", str(out), "--resume"])
    assert r.exit_code != 0 and "holds a distillation" in r.output
    r = runner.invoke(app, [*base, "--steps", "2"])
    assert r.exit_code != 0 and "already holds a run" in r.output
    r = runner.invoke(app, ["--quiet", "train", "--distill", str(tmp_path / "nowhere"), "--data", str(tiny_corpus),
                            "-o", str(tmp_path / "x")])  # fmt: skip
    assert r.exit_code != 0 and "not a model directory" in r.output and "Traceback" not in r.output
    gen = tmp_path / "gen"
    r = runner.invoke(app, ["generate", "a person waves", "--low", "wave", "--model", str(out), "-n", "1",
                            "--frames", "20", "-o", str(gen), "--seed", "1"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "lcm 4 steps" in r.output
    import numpy as np

    saved = np.load(next(gen.glob("*.npz")))
    assert str(saved["sampler"]) == "lcm"
    for extra, match in ((["--sampler", "ddim"], "samples with lcm"), (["--guidance", "4"], "built in"),
                         (["--sampler", "plms"], "--sampler")):  # fmt: skip
        r = runner.invoke(app, ["generate", "a person waves", "--model", str(out), "-n", "1", "--frames", "20",
                                "-o", str(tmp_path / "g2"), *extra])  # fmt: skip
        assert r.exit_code != 0 and match in r.output and "Traceback" not in r.output, (extra, r.output)
    r = runner.invoke(app, ["generate", "a person waves", "--model", str(teacher), "-n", "1", "--frames", "20",
                            "-o", str(tmp_path / "g3"), "--sampler", "lcm"])  # fmt: skip
    assert r.exit_code != 0 and "needs a distilled model" in r.output


def test_embedded_student_is_picked_for_few_steps(teacher, student, tmp_path, monkeypatch):
    """A student shipped in assets/default/lcm serves --sampler lcm and --sampler auto with at most 4 steps."""
    import shutil
    import warnings

    from motiongpt_cli import paths
    from motiongpt_cli.generation import resolve_index

    embedded = tmp_path / "default"
    shutil.copytree(teacher, embedded)
    for name in ("config.json", "model.safetensors", "normalization.safetensors", "length.safetensors"):
        if (student / name).is_file():
            (embedded / "lcm").mkdir(exist_ok=True)
            shutil.copy(student / name, embedded / "lcm" / name)
    monkeypatch.setattr(paths, "EMBEDDED_DIR", embedded)
    assert paths.default_model_dir() == embedded
    assert paths.default_model_dir("auto", 10) == embedded and paths.default_model_dir("ddim", 4) == embedded
    assert paths.default_model_dir("lcm") == embedded / "lcm" == paths.default_model_dir("auto", 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the student shares the embedded index without a warning
        assert resolve_index(embedded / "lcm", None) == embedded / "index.npz"
    with pytest.warns(UserWarning, match="no retrieval index of its own"):
        resolve_index(tmp_path, None)
    shutil.rmtree(embedded / "lcm")  # without a shipped student, lcm needs --model
    assert paths.default_model_dir("lcm") == embedded
