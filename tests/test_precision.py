"""Sampling precision: what auto picks from the CPU's flags, bf16 autocast and int8 dynamic quantisation."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from motiongpt_cli.cli import app
from motiongpt_cli.diffusion.denoiser import DenoiserConfig, MotionDenoiser
from motiongpt_cli.diffusion.precision import cpu_flags, model_for, native_bf16_cpu, resolve_precision
from motiongpt_cli.diffusion.sampler import SamplingOptions, guided_x0, sample
from motiongpt_cli.diffusion.schedule import NoiseSchedule
from motiongpt_cli.errors import InvalidValueError

runner = CliRunner()


def _tiny() -> MotionDenoiser:
    torch.manual_seed(0)
    cfg = DenoiserConfig(width=64, layers=2, heads=4, ff_size=128, dropout=0.0, max_frames=40, conditioning="dual",
                         high_dim=16, low_dim=8)  # fmt: skip
    return MotionDenoiser(cfg).eval()


def test_auto_follows_the_cpu_flags_and_the_device():
    amx = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})
    avx2 = frozenset({"avx2", "fma"})
    zen4 = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})
    assert native_bf16_cpu(amx) == "amx" and native_bf16_cpu(zen4) == "avx512" and native_bf16_cpu(avx2) is None
    # AVX-512 BF16 without AMX: measured faster at every width and batch (1.5x embedded, 2.2x MDM size at batch 1)
    for width, batch in ((256, 1), (256, 16), (512, 1), (None, None)):
        assert resolve_precision("auto", "cpu", zen4, width=width, batch=batch) == "bf16"
    assert resolve_precision("auto", "cuda", zen4, width=256) == "fp32"
    assert resolve_precision("auto", "cpu", amx) == "bf16"
    assert resolve_precision("auto", "cpu", amx, width=512) == "bf16"
    assert resolve_precision("auto", "cpu", amx, width=256) == "fp32"  # measured slower at the embedded width
    assert resolve_precision("auto", "cpu", amx, width=256, batch=8) == "fp32"
    assert resolve_precision("auto", "cpu", amx, width=256, batch=16) == "bf16"  # measured 2.8x there
    assert resolve_precision("auto", "cpu", avx2, width=512, batch=32) == "fp32"
    assert resolve_precision("auto", "cpu", avx2) == "fp32"
    assert resolve_precision("auto", "cuda", amx) == "fp32"  # not measured on a GPU
    for explicit in ("fp32", "bf16", "int8"):
        assert resolve_precision(explicit, "cpu", avx2) == explicit
    with pytest.raises(InvalidValueError, match="int8 sampling runs on the CPU only"):
        resolve_precision("int8", "cuda")
    with pytest.raises(InvalidValueError, match="precision must be one of"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(InvalidValueError, match="precision must be fp32, bf16 or int8"):
        SamplingOptions(precision="auto")  # type: ignore[arg-type]
    flags = cpu_flags()
    assert isinstance(flags, frozenset) and (not flags or "fpu" in flags)  # /proc/cpuinfo read, or nothing


@torch.no_grad()
def test_bf16_and_int8_stay_close_to_fp32_and_leave_the_model_alone():
    model = _tiny()
    x = torch.randn(2, 30, 263, generator=torch.Generator().manual_seed(1))
    high, low = torch.randn(2, 16), torch.randn(2, 8)
    mask, keep = torch.ones(2, 30, dtype=torch.bool), torch.ones(2, dtype=torch.bool)
    ref = guided_x0(model, x, 500, high, low, mask, keep, SamplingOptions(precision="fp32"))
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    for precision, tolerance in (("bf16", 0.05), ("int8", 0.05)):
        out = guided_x0(model, x, 500, high, low, mask, keep, SamplingOptions(precision=precision))
        assert out.dtype == torch.float32 and out.shape == ref.shape
        error = float((out - ref).abs().max() / ref.abs().max())
        assert 0 < error < tolerance, (precision, error)  # another arithmetic, close to fp32's
    quantised = model_for(model, "int8")
    assert model_for(model, "int8") is quantised and model_for(model, "fp32") is model  # made once
    assert type(quantised.output_proj).__module__.startswith("torch.ao.nn.quantized")
    assert isinstance(model.output_proj, torch.nn.Linear) and model.output_proj.weight.dtype == torch.float32
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())  # the fp32 model is untouched


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_a_seed_reproduces_in_every_precision(precision):
    model, schedule = _tiny(), NoiseSchedule(100)
    high, low = torch.randn(2, 16), torch.randn(2, 8)
    options = SamplingOptions(steps=4, precision=precision)

    def run():
        gens = [torch.Generator().manual_seed(s) for s in (3, 4)]
        return sample(model, schedule, high, low, torch.tensor([30, 20]), options, gens)

    first = run()
    assert bool(torch.isfinite(first).all()) and torch.equal(first, run())
    fp32 = sample(model, schedule, high, low, torch.tensor([30, 20]), SamplingOptions(steps=4),
                  [torch.Generator().manual_seed(s) for s in (3, 4)])  # fmt: skip
    assert not torch.equal(first, fp32) and torch.allclose(first, fp32, atol=0.25 * float(fp32.abs().max()))


def test_cli_precision(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    base = ["--no-config", "generate", "a person waves", "--low", "wave", "-n", "1", "--steps", "2", "--seed", "0",
            "--frames", "40", "-o", str(tmp_path), "--format", "npz", "--json"]  # fmt: skip
    manifests = {}
    for precision in ("fp32", "int8", "auto"):
        r = runner.invoke(app, [*base, "--precision", precision, "--overwrite"])
        assert r.exit_code == 0, r.output
        manifests[precision] = json.loads(r.stdout.splitlines()[-1])
    assert manifests["int8"]["precision"] == "int8" and manifests["fp32"]["precision"] == "fp32"
    # one 256-wide motion per forward: bf16 on AVX-512 BF16 CPUs without AMX, fp32 on every other CPU
    assert manifests["auto"]["precision"] == resolve_precision("auto", "cpu", width=256, batch=1)
    assert manifests["auto"]["precision"] == ("bf16" if native_bf16_cpu() == "avx512" else "fp32")
    from motiongpt_cli.api import load_pipeline

    pipe = load_pipeline(device="cpu")
    plan = pipe.plan("a person waves", "wave", n=16, frames=40, steps=2, seed=0)
    assert plan.sampling.precision == resolve_precision("auto", "cpu", width=256, batch=16)  # bf16 on AMX, AVX-512 BF16
    bad = runner.invoke(app, [*base, "--precision", "fp16"])
    assert bad.exit_code == 2 and "must be one of auto, fp32, bf16, int8" in bad.stderr
    assert "Traceback" not in bad.output


def test_batch_size_auto_follows_the_measured_rule():
    from motiongpt_cli.api import load_pipeline
    from motiongpt_cli.generation import batch_and_sampling

    loaded = load_pipeline(device="cpu").loaded
    assert batch_and_sampling(loaded, "auto", 40, precision="fp32")[0] == 1  # fp32 on a CPU: one per forward
    for precision in ("bf16", "int8"):
        batch, sampling = batch_and_sampling(loaded, "auto", 40, precision=precision)
        assert (batch, sampling.precision) == (16, precision)
        assert batch_and_sampling(loaded, "auto", 3, precision=precision)[0] == 3
    batch, sampling = batch_and_sampling(loaded, "auto", 40, precision="auto")
    assert sampling.precision == resolve_precision("auto", "cpu", width=256, batch=16)
    assert batch == (16 if sampling.precision == "bf16" else 1)  # bf16 where AMX or AVX-512 BF16, then batched
    assert batch_and_sampling(loaded, 8, 40, precision="fp32")[0] == 8
    with pytest.raises(InvalidValueError, match="batch_size must be a number or 'auto'"):
        batch_and_sampling(loaded, "many", 4)


def test_cli_batch_size_auto(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    base = ["--no-config", "generate", "a person waves", "--low", "wave", "-n", "2", "--steps", "2", "--seed", "0",
            "--frames", "40", "-o", str(tmp_path), "--format", "npz", "--json", "--precision", "fp32"]  # fmt: skip
    outputs = {}
    for batch in ("auto", "2"):
        r = runner.invoke(app, [*base, "--batch-size", batch, "--overwrite"])
        assert r.exit_code == 0, r.output
        outputs[batch] = [json.loads(line)["seed"] for line in r.stdout.splitlines()]
    assert outputs["auto"] == outputs["2"]  # the batch does not change what is sampled
    for bad in ("0", "lots"):
        r = runner.invoke(app, [*base, "--batch-size", bad])
        assert r.exit_code == 2 and "Invalid value for '--batch-size'" in r.stderr, r.output
