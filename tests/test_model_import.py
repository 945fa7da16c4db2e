"""`motiongpt model import`: MDM's and the seed's checkpoints, and parity with their own code.

The fixtures in tests/data/interop/ were produced once by running the upstream model and sampler code with small
random weights (see tests/data/interop/README.md). Layouts (EMA, clip_model.*, naming of babel_model.*, ...) are
derived here from the two fixture checkpoints. Tensors: ours are (B, frames, 263), MDM's (B, 263, 1, frames).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from motiongpt_cli.checkpoint import load_model
from motiongpt_cli.cli import app
from motiongpt_cli.diffusion.denoiser import DenoiserConfig
from motiongpt_cli.diffusion.sampler import SamplingOptions, sample
from motiongpt_cli.errors import InvalidValueError
from motiongpt_cli.generation import sampling_options
from motiongpt_cli.model_import import ImportOptions, import_checkpoint, packaged_minilm

DATA = Path(__file__).parent / "data" / "interop"
runner = CliRunner()
TOL = 1e-5


def ours(x_mdm: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x_mdm[..., 0, :].swapaxes(-1, -2)))


def mdm_layout(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, 2, 1)[:, :, None].numpy()


@pytest.fixture(scope="module")
def norm(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("humanml3d")
    rng = np.random.default_rng(0)
    np.save(root / "Mean.npy", rng.standard_normal(263).astype(np.float32) * 0.1)
    np.save(root / "Std.npy", (0.5 + rng.random(263)).astype(np.float32))
    return root


def mdm_state() -> dict:
    return torch.load(DATA / "mdm_trans_enc.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def minilm() -> dict:
    return packaged_minilm()[1]


def seed_state(minilm: dict, naming: str = "auto_model", position_ids: bool = False) -> dict:
    """The seed fixture with babel_model.* put back: the packaged all-MiniLM-L6-v2 (what the original ran)."""
    state = torch.load(DATA / "seed_mini.pt", map_location="cpu", weights_only=True)
    state.update({f"babel_model.0.{naming}.{k}": v for k, v in minilm.items()})
    if position_ids:
        state[f"babel_model.0.{naming}.embeddings.position_ids"] = torch.arange(512)[None]
    return state


def write_checkpoint(root: Path, obj, family: str = "mdm", args: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    torch.save(obj, root / "model000000001.pt")
    stem = "mdm_trans_enc" if family == "mdm" else "seed_mini"
    base = json.loads((DATA / f"{stem}_args.json").read_text())
    (root / "args.json").write_text(json.dumps({**base, **(args or {})}))
    return root / "model000000001.pt"


def imported(tmp_path: Path, norm: Path, obj, family: str = "mdm", args: dict | None = None, kind: str = "auto"):
    ckpt = write_checkpoint(tmp_path / "ckpt", obj, family, args)
    result = import_checkpoint(ckpt, tmp_path / "model", ImportOptions(kind=kind, humanml3d=norm))  # type: ignore[arg-type]
    return result, load_model(result.path)


def forward_pair(model, x, t, high, low=None):
    keep = torch.ones(x.shape[0], dtype=torch.bool)
    with torch.no_grad():
        cond = model(x, t, high, low, None, keep, keep)
        uncond = model(x, t, high, low, None, ~keep, ~keep)
    return cond, uncond, uncond + 2.5 * (cond - uncond)


def assert_mdm_parity(model):
    o = np.load(DATA / "mdm_trans_enc_outputs.npz")
    cond, uncond, cfg = forward_pair(model, ours(o["x_t"]), torch.from_numpy(o["t"]), torch.from_numpy(o["text"]))
    for name, value in (("cond", cond), ("uncond", uncond), ("cfg", cfg)):
        assert np.abs(mdm_layout(value) - o[name]).max() < TOL, name


# ---------------------------------------------------------------------------------------------------------------
# parity with the original code


def test_mdm_forward_matches_the_original(tmp_path, norm):
    result, loaded = imported(tmp_path, norm, mdm_state())
    assert result.family == "mdm" and loaded.schedule.num_train_timesteps == 50
    cfg = loaded.model.config
    assert (cfg.null_condition, cfg.mask_padding, cfg.sinusoid, cfg.conditioning) == ("zero_embedding", False, "mdm",
                                                                                      "high")  # fmt: skip
    assert_mdm_parity(loaded.model)
    np.testing.assert_array_equal(loaded.mean, np.load(norm / "Mean.npy"))


def test_mdm_mask_frames_model_masks_padding_as_the_original(tmp_path, norm):
    _, loaded = imported(tmp_path, norm, mdm_state(), args={"mask_frames": True})
    assert loaded.model.config.mask_padding
    o = np.load(DATA / "mdm_trans_enc_outputs.npz")
    x = ours(o["x_t"])
    mask = torch.arange(x.shape[1])[None] < torch.from_numpy(o["lengths"])[:, None]
    keep = torch.ones(2, dtype=torch.bool)
    with torch.no_grad():
        out = loaded.model(x, torch.from_numpy(o["t"]), torch.from_numpy(o["text"]), None, mask, keep)
    assert np.abs(mdm_layout(out) - o["cond_masked"]).max() < TOL


def test_mdm_50_step_sampling_loop_matches_p_sample_loop(tmp_path, norm):
    """MDM's ancestral loop (fixed-small variance, x0 prediction, CFG 2.5 with two passes) with the same noise."""
    _, loaded = imported(tmp_path, norm, mdm_state())
    o = np.load(DATA / "mdm_trans_enc_outputs.npz")
    noise = np.random.default_rng(50).standard_normal((51, 2, 263, 1, 10), dtype=np.float32)  # as generated
    # what `generate --sampler ddpm` (no --steps, no --guidance) runs on the imported model: the original's loop
    options = sampling_options(loaded, sampler="ddpm")
    assert options == SamplingOptions(steps=50, sampler="ddpm", guidance=2.5, guidance_passes="separate")
    x = sample(loaded.model, loaded.schedule, torch.from_numpy(o["loop50_text"]), None, torch.tensor([10, 10]),
               options, noise=[ours(n) for n in noise])  # fmt: skip
    assert np.abs(mdm_layout(x) - o["loop50"]).max() < TOL
    # the batched [cond; uncond] forward of our own sampler agrees to float rounding too
    batched = sample(loaded.model, loaded.schedule, torch.from_numpy(o["loop50_text"]), None,
                     torch.tensor([10, 10]), SamplingOptions(steps=50, sampler="ddpm", guidance=2.5),
                     noise=[ours(n) for n in noise])  # fmt: skip
    assert np.abs(mdm_layout(batched) - o["loop50"]).max() < 1e-4


def test_seed_forward_matches_the_original(tmp_path, norm, minilm):
    from motiongpt_cli.text.encoders import load_encoder

    result, loaded = imported(tmp_path, norm, seed_state(minilm, "model"), family="motiongpt")
    assert result.family == "motiongpt" and result.low_encoder == "minilm"
    assert loaded.schedule.num_train_timesteps == 1000  # the seed hard-codes 1000 steps
    assert loaded.text.high_encoder == "clip:ViT-B-32-quickgelu/openai@ctx42,fp16,raw"
    o = np.load(DATA / "seed_mini_outputs.npz")
    low = load_encoder("minilm").encode([str(t) for t in o["low_texts"]])
    assert np.abs(low - o["low"]).max() < 1e-6  # our MiniLM path equals the seed's SentenceTransformer.encode
    cond, uncond, cfg = forward_pair(loaded.model, ours(o["x_t"]), torch.from_numpy(o["t"]),
                                     torch.from_numpy(o["high"]), torch.from_numpy(low))  # fmt: skip
    for name, value in (("cond", cond), ("uncond", uncond), ("cfg", cfg)):
        assert np.abs(mdm_layout(value) - o[name]).max() < TOL, name


@pytest.mark.slow
def test_seed_1000_step_sampling_loop_matches_p_sample_loop(tmp_path, norm, minilm):
    from motiongpt_cli.text.encoders import load_encoder

    _, loaded = imported(tmp_path, norm, seed_state(minilm), family="motiongpt")
    o = np.load(DATA / "seed_mini_outputs.npz")
    noise = np.random.default_rng(1000).standard_normal((1001, 1, 263, 1, 10), dtype=np.float32)
    low = torch.from_numpy(load_encoder("minilm").encode([str(o["loop1000_low_text"][0])]))
    options = sampling_options(loaded, sampler="ddpm")  # generate's defaults for DDPM on the imported seed
    assert options == SamplingOptions(steps=1000, sampler="ddpm", guidance=2.5, guidance_passes="separate")
    x = sample(loaded.model, loaded.schedule, torch.from_numpy(o["loop1000_high"]), low, torch.tensor([10]), options,
               noise=[ours(n) for n in noise])  # fmt: skip
    assert np.abs(mdm_layout(x) - o["loop1000"]).max() < TOL


# ---------------------------------------------------------------------------------------------------------------
# layouts


def test_plain_state_dict_without_pe_buffers(tmp_path, norm):
    state = {k: v for k, v in mdm_state().items() if not k.endswith("sequence_pos_encoder.pe")}
    result, loaded = imported(tmp_path, norm, state, kind="mdm")
    assert not any("dropped" in n for n in result.notes)
    assert_mdm_parity(loaded.model)


def test_pe_buffers_are_dropped_and_recomputed(tmp_path, norm):
    result, loaded = imported(tmp_path, norm, mdm_state())
    assert any("sequence_pos_encoder.pe" in n for n in result.notes)
    assert_mdm_parity(loaded.model)


def test_ema_checkpoint_uses_model_avg(tmp_path, norm):
    avg = mdm_state()
    raw = {k: v + 1.0 for k, v in avg.items()}
    result, loaded = imported(tmp_path, norm, {"model": raw, "model_avg": avg}, args={"use_ema": True})
    assert any("model_avg" in n for n in result.notes)
    assert_mdm_parity(loaded.model)


def test_model_only_dict(tmp_path, norm):
    result, loaded = imported(tmp_path, norm, {"model": mdm_state()})
    assert any("no EMA" in n for n in result.notes)
    assert_mdm_parity(loaded.model)


def test_clip_model_weights_are_kept_as_the_clip_file(tmp_path, norm):
    from safetensors.torch import load_file

    state = mdm_state()
    clip = {"clip_model.token_embedding.weight": torch.randn(10, 8),
            "clip_model.transformer.resblocks.0.attn.in_proj_weight": torch.randn(24, 8).half(),
            "clip_model.text_projection": torch.randn(8, 4).half(),
            "clip_model.visual.conv1.weight": torch.randn(4, 3, 2, 2).half()}  # fmt: skip
    result, loaded = imported(tmp_path, norm, {**state, **clip})
    assert loaded.text.high_weights == "clip.safetensors"
    saved = load_file(str(result.path / "clip.safetensors"))
    assert set(saved) == {"token_embedding.weight", "transformer.resblocks.0.attn.in_proj_weight", "text_projection"}
    assert saved["text_projection"].dtype == torch.float16 and saved["token_embedding.weight"].dtype == torch.float32
    assert torch.equal(saved["text_projection"], clip["clip_model.text_projection"])
    assert_mdm_parity(loaded.model)


@pytest.mark.parametrize("naming,position_ids", [("auto_model", False), ("model", False), ("auto_model", True)])
def test_seed_babel_model_namings(tmp_path, norm, minilm, naming, position_ids):
    result, loaded = imported(tmp_path, norm, seed_state(minilm, naming, position_ids), family="motiongpt",
                              kind="motiongpt")  # fmt: skip
    assert result.low_encoder == "minilm" and loaded.text.low_weights is None
    assert any("position_ids" in n for n in result.notes) == position_ids
    config = json.loads((result.path / "config.json").read_text())
    assert config["source"]["babel_model_naming"] == naming and config["source"]["family"] == "motiongpt"
    assert config["original"]["sample_length"] == "requested" and config["original"]["guidance"] == 2.5


def test_seed_with_changed_minilm_saves_its_own_low_encoder(tmp_path, norm, minilm):
    changed = dict(minilm)
    changed["pooler.dense.bias"] = changed["pooler.dense.bias"] + 1.0
    result, loaded = imported(tmp_path, norm, seed_state(changed), family="motiongpt")
    folder = result.path / "low_encoder"
    assert loaded.text.low_weights == "low_encoder" and result.low_encoder == "st:low_encoder"  # relative
    assert (folder / "modules.json").is_file() and (folder / "vocab.txt").is_file()
    from safetensors.torch import load_file

    assert torch.equal(load_file(str(folder / "model.safetensors"))["pooler.dense.bias"], changed["pooler.dense.bias"])


def test_old_config_without_the_new_denoiser_keys_loads_with_defaults():
    config = DenoiserConfig.from_dict({"width": 32, "layers": 1, "heads": 2, "ff_size": 64})
    assert (config.null_condition, config.mask_padding, config.sinusoid) == ("zero_projection", True, "motiongpt")


# ---------------------------------------------------------------------------------------------------------------
# bad files: one error line each, non-zero exit


def cli_import(*args: str):
    return runner.invoke(app, ["--no-config", "model", "import", *args])


def assert_one_error(result, text: str):
    assert result.exit_code != 0, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and text in errors[0], result.stderr
    assert "Traceback" not in result.stderr


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # would create the marker file if unpickled


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, norm):
    marker = tmp_path / "pwned"
    ckpt = write_checkpoint(tmp_path / "ckpt", {"model": _Payload(marker)})
    result = cli_import("auto", str(ckpt), "-o", str(tmp_path / "m"), "--humanml3d", str(norm))
    assert_one_error(result, "refused")
    assert not marker.exists() and not (tmp_path / "m").exists()


def test_not_a_checkpoint(tmp_path, norm):
    ckpt = write_checkpoint(tmp_path / "ckpt", {})
    ckpt.write_bytes(b"this is not a checkpoint at all")
    assert_one_error(cli_import("auto", str(ckpt), "-o", str(tmp_path / "m"), "--humanml3d", str(norm)),
                     "not a PyTorch checkpoint")  # fmt: skip


def test_a_tensor_file_that_is_not_a_state_dict(tmp_path, norm):
    ckpt = write_checkpoint(tmp_path / "ckpt", torch.zeros(3))
    assert_one_error(cli_import("auto", str(ckpt), "-o", str(tmp_path / "m"), "--humanml3d", str(norm)),
                     "not a checkpoint")  # fmt: skip


def test_wrong_family(tmp_path, norm, minilm):
    ckpt = write_checkpoint(tmp_path / "ckpt", seed_state(minilm), "motiongpt")
    assert_one_error(cli_import("mdm", str(ckpt), "-o", str(tmp_path / "m"), "--humanml3d", str(norm)),
                     "is a motiongpt checkpoint")  # fmt: skip
    ckpt = write_checkpoint(tmp_path / "ckpt2", mdm_state())
    assert_one_error(cli_import("motiongpt", str(ckpt), "-o", str(tmp_path / "m"), "--humanml3d", str(norm)),
                     "is a mdm checkpoint")  # fmt: skip


def test_missing_and_unknown_keys_are_listed(tmp_path, norm):
    state = mdm_state()
    del state["seqTransEncoder.layers.1.linear2.bias"]
    ckpt = write_checkpoint(tmp_path / "a", state)
    assert_one_error(cli_import("auto", str(ckpt), "-o", str(tmp_path / "m"), "--humanml3d", str(norm)),
                     "missing keys for a mdm checkpoint: seqTransEncoder.layers.1.linear2.bias")  # fmt: skip
    state = mdm_state()
    state["embed_action.action_embedding"] = torch.zeros(3, 64)
    ckpt = write_checkpoint(tmp_path / "b", state)
    assert_one_error(cli_import("auto", str(ckpt), "-o", str(tmp_path / "m"), "--humanml3d", str(norm)),
                     "unknown keys for a mdm checkpoint: embed_action.action_embedding")  # fmt: skip


def test_missing_mean_std_and_args(tmp_path, norm):
    ckpt = write_checkpoint(tmp_path / "ckpt", mdm_state())
    assert_one_error(cli_import("auto", str(ckpt), "-o", str(tmp_path / "m")), "normalisation statistics")
    (tmp_path / "ckpt" / "args.json").unlink()
    assert_one_error(cli_import("auto", str(ckpt), "-o", str(tmp_path / "m"), "--humanml3d", str(norm)),
                     "args.json not found")  # fmt: skip


def stub_clip(monkeypatch, name: str) -> None:
    """No CLIP weights exist here: a stub encoder (fixed random 512-d features per call) registered under the model's
    CLIP encoder name stands in for it."""
    from motiongpt_cli.text import encoders

    class StubClip(encoders.TextEncoder):
        def encode(self, texts):
            rng = np.random.default_rng(0)
            return rng.standard_normal((len(texts), self.dim)).astype(np.float32)

    monkeypatch.setitem(encoders._LOADED, (name, "cpu"), StubClip(name, 512))


def test_cli_import_then_generate(tmp_path, norm, monkeypatch):
    """The imported MDM fixture generates through `motiongpt generate` (with a stub CLIP: :func:`stub_clip`)."""
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    ckpt = write_checkpoint(tmp_path / "ckpt", {"model": mdm_state(), "model_avg": mdm_state()})
    shutil.copy(norm / "Mean.npy", tmp_path / "m.npy")
    r = cli_import("auto", str(ckpt), "-o", str(tmp_path / "model"), "--mean", str(tmp_path / "m.npy"), "--std",
                   str(norm / "Std.npy"), "--json")  # fmt: skip
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["family"] == "mdm" and summary["diffusion_steps"] == 50
    stub_clip(monkeypatch, summary["high_encoder"])
    for sampler in ("ddim", "ddpm"):
        out = tmp_path / f"out-{sampler}"
        r = runner.invoke(app, ["--no-config", "generate", "--model", str(tmp_path / "model"), "a person walks", "-n",
                                "2", "-o", str(out), "--frames", "40", "--steps", "5", "--seed", "1",
                                "--sampler", sampler])  # fmt: skip
        assert r.exit_code == 0, r.stderr
        files = sorted(p.name for p in out.iterdir())
        assert files == ["a-person-walks-00.bvh", "a-person-walks-00.npz", "a-person-walks-01.bvh",
                         "a-person-walks-01.npz"], files  # fmt: skip
        with np.load(out / "a-person-walks-00.npz", allow_pickle=False) as z:
            assert z["features"].shape == (40, 263) and np.all(np.isfinite(z["joints"]))


# ---------------------------------------------------------------------------------------------------------------
# sampling the imported model as the original does: length regime, DDPM over all steps


@pytest.fixture
def sampled_lengths(monkeypatch) -> list[int]:
    """The length of every tensor the sampler draws (generation.sample's ``lengths``)."""
    from motiongpt_cli import generation

    seen: list[int] = []
    real = generation.sample

    def spy(model, schedule, high, low, lengths, *args, **kwargs):
        seen.extend(int(n) for n in lengths)
        return real(model, schedule, high, low, lengths, *args, **kwargs)

    monkeypatch.setattr(generation, "sample", spy)
    return seen


def test_sample_length_max_samples_196_frames_and_crops(tmp_path, norm, monkeypatch, sampled_lengths):
    """MDM without mask_frames records "max" (MDM from June 2023, #104): generate samples 196 frames with every
    frame valid and keeps the first L, which equal the 196-frame sample of the same seed; "requested" samples L."""
    from motiongpt_cli.api import Pipeline
    from motiongpt_cli.generation import Job, sample_batch

    result, loaded = imported(tmp_path, norm, mdm_state())
    assert loaded.config["original"]["sample_length"] == "max"
    stub_clip(monkeypatch, result.high_encoder)
    pipe = Pipeline.from_pretrained(result.path, device="cpu", cache_dir=tmp_path / "cache")
    plan = pipe.plan("a person walks", False, n=2, frames=60, steps=4, seed=3, batch_size=16)  # one batch, as below
    assert plan.sample_length == "max" and plan.frames == 60  # the recorded default, no flag given
    motions = list(pipe.run(plan))
    assert sampled_lengths == [196, 196] and [m.features.shape for m in motions] == [(60, 263), (60, 263)]
    assert [(m.sampler, m.sample_length) for m in motions] == [("ddim", "max")] * 2  # recorded in the .npz
    full = sample_batch(pipe.loaded, plan.jobs, [196, 196], plan.sampling, pipe.encoders)
    assert full.shape == (2, 196, 263)
    for motion, row in zip(motions, full, strict=True):
        np.testing.assert_array_equal(motion.features, row[:60].astype(np.float32))
    sampled_lengths.clear()
    requested = pipe.generate("a person walks", False, n=2, frames=60, steps=4, seed=3, sample_length="requested",
                              batch_size=16)  # fmt: skip
    assert sampled_lengths == [60, 60] and requested[0].features.shape == (60, 263)
    assert requested[0].sample_length == "requested"
    jobs = [Job(0, 0, "a person walks", None, "none", m.seed, "") for m in requested]
    np.testing.assert_array_equal(requested[0].features,
                                  sample_batch(pipe.loaded, jobs, [60, 60], plan.sampling, pipe.encoders)[0]
                                  .astype(np.float32))  # fmt: skip
    assert not np.allclose(requested[0].features, motions[0].features)  # other noise, other length


def test_recorded_sample_length_per_family(tmp_path, norm, minilm):
    from motiongpt_cli.api import Pipeline

    cases = [(mdm_state(), "mdm", {"mask_frames": True}, "requested"),
             (seed_state(minilm), "motiongpt", None, "requested")]  # fmt: skip
    for i, (state, family, args, expected) in enumerate(cases):
        _, loaded = imported(tmp_path / str(i), norm, state, family=family, args=args)
        assert loaded.config["original"]["sample_length"] == expected
        pipe = Pipeline(loaded, device="cpu")
        assert pipe.plan("a walk", False, frames=50, seed=0).sample_length == expected
        assert pipe.plan("a walk", False, frames=50, seed=0, sample_length="max").sample_length == "max"
    with pytest.raises(InvalidValueError, match="sample_length must be requested or max"):
        pipe.plan("a walk", False, seed=0, sample_length="longest")


def test_own_models_keep_requested_and_our_sampler_defaults(tmp_path):
    """A model directory without an `original` section (ours): requested length, DDIM 50 / DDPM 50, guidance 2.5
    in one batched forward, as before."""
    from motiongpt_cli.checkpoint import LoadedModel, TextConfig
    from motiongpt_cli.diffusion.denoiser import MotionDenoiser
    from motiongpt_cli.diffusion.schedule import NoiseSchedule
    from motiongpt_cli.generation import resolve_sample_length

    config = DenoiserConfig(width=32, layers=1, heads=2, ff_size=64, max_frames=64, high_dim=384)
    loaded = LoadedModel(MotionDenoiser(config), NoiseSchedule(1000), TextConfig(), np.zeros(263, np.float32),
                         np.ones(263, np.float32), tmp_path, {})  # fmt: skip
    assert resolve_sample_length(loaded) == "requested"
    for sampler in ("ddim", "ddpm"):
        assert sampling_options(loaded, sampler=sampler) == SamplingOptions(steps=50, sampler=sampler, guidance=2.5)


def test_cli_sample_length_and_ddpm_over_all_steps(tmp_path, norm, monkeypatch, sampled_lengths):
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    result, _ = imported(tmp_path, norm, mdm_state())
    stub_clip(monkeypatch, result.high_encoder)
    base = ["--no-config", "generate", "--model", str(result.path), "a person walks", "--frames", "40", "--seed", "1",
            "--json", "--format", "npz"]  # fmt: skip
    r = runner.invoke(app, [*base, "-o", str(tmp_path / "a"), "--steps", "3"])
    assert r.exit_code == 0, r.stderr
    line = json.loads(r.stdout)
    assert (line["sample_length"], line["frames"], line["steps"], line["sampler"]) == ("max", 40, 3, "ddim")
    assert sampled_lengths == [196]
    sampled_lengths.clear()
    r = runner.invoke(app, [*base, "-o", str(tmp_path / "b"), "--sample-length", "requested", "--sampler", "ddpm"])
    assert r.exit_code == 0, r.stderr
    line = json.loads(r.stdout)
    # no --steps with ddpm: every one of the model's 50 diffusion steps, the original's ancestral loop
    assert (line["sample_length"], line["steps"], line["sampler"], line["guidance"]) == ("requested", 50, "ddpm", 2.5)
    assert sampled_lengths == [40]
    r = runner.invoke(app, [*base, "-o", str(tmp_path / "c"), "--sample-length", "longest"])
    assert r.exit_code == 2, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "--sample-length" in errors[0] and "requested or max" in errors[0], r.stderr
    assert not (tmp_path / "c").exists()


def test_seed_with_its_own_minilm_is_portable(tmp_path, norm, minilm, monkeypatch):
    """The seed's own MiniLM folder is recorded relative to the model directory: import into one folder, move the
    folder, and generate from the new place (the old one is gone). Its embeddings are its weights', cached under
    their hash, not the stock MiniLM's."""
    from motiongpt_cli.api import Pipeline
    from motiongpt_cli.text.encoders import load_encoder

    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    changed = dict(minilm)
    changed["embeddings.LayerNorm.bias"] = changed["embeddings.LayerNorm.bias"] + 0.5  # changes every embedding
    result, _ = imported(tmp_path / "first", norm, seed_state(changed), family="motiongpt")
    config = json.loads((result.path / "config.json").read_text())
    assert config["text"]["low_encoder"] == "st:low_encoder" and config["text"]["low_weights"] == "low_encoder"
    assert str(tmp_path) not in json.dumps(config["text"])
    moved = tmp_path / "elsewhere" / "seed-model"
    moved.parent.mkdir()
    shutil.move(str(result.path), moved)
    stub_clip(monkeypatch, result.high_encoder)
    out = tmp_path / "out"
    r = runner.invoke(app, ["--no-config", "generate", "--model", str(moved), "a person greets", "--low", "waves",
                            "-n", "1", "--frames", "40", "--steps", "2", "--seed", "0", "-o", str(out),
                            "--format", "npz"])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    with np.load(out / "a-person-greets-00.npz", allow_pickle=False) as z:
        assert z["features"].shape == (40, 263)
    low = Pipeline.from_pretrained(moved, device="cpu", cache_dir=tmp_path / "cache").encoders["low"]
    assert Path(low.path_or_name) == (moved / "low_encoder").resolve()
    assert low.cache_key.startswith("st:low_encoder|sha256:")
    own, stock = low.encode(["waves"]), load_encoder("minilm").encode(["waves"])
    assert not np.allclose(own, stock, atol=1e-3)


def test_evaluate_runs_on_an_imported_model(tmp_path, norm, monkeypatch, eval_models, eval_corpus, sampled_lengths):
    """`motiongpt evaluate --model DIR` on the imported MDM fixture with the tiny learned evaluator. A model without a
    frame mask is sampled at 196 frames, as the original evaluation samples the ground-truth batch shape."""
    monkeypatch.setenv("MOTIONGPT_HOME", str(tmp_path / "home"))
    result, _ = imported(tmp_path, norm, mdm_state())
    stub_clip(monkeypatch, result.high_encoder)
    evaluator, _ = eval_models
    r = runner.invoke(app, ["--no-config", "evaluate", "--model", str(result.path), "--data", str(eval_corpus),
                            "--evaluator", str(evaluator.path), "--replications", "1", "--steps", "2", "--limit",
                            "32", "--low-source", "none", "--json", str(tmp_path / "eval.json")])  # fmt: skip
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["model"] == "ckpt" and report["clips"] == 32 and set(report["rows"]) == {"real", "generated"}
    assert all(np.isfinite(v["mean"]) for v in report["rows"]["generated"].values())
    assert sampled_lengths and set(sampled_lengths) == {196}
    assert (report["sampler"], report["steps"], report["guidance"]) == ("ddim", 2, 2.5)
    # --sampler ddpm without --steps runs the original's own loop: every one of the model's 50 diffusion steps
    r = runner.invoke(app, ["--no-config", "evaluate", "--model", str(result.path), "--data", str(eval_corpus),
                            "--evaluator", str(evaluator.path), "--replications", "1", "--limit", "32",
                            "--low-source", "none", "--sampler", "ddpm", "--json", "-"])  # fmt: skip
    assert r.exit_code == 0, r.output
    ddpm = json.loads(r.stdout)
    assert (ddpm["sampler"], ddpm["steps"]) == ("ddpm", 50)
    assert ddpm["rows"]["real"] == report["rows"]["real"] and ddpm["rows"]["generated"] != report["rows"]["generated"]
    r = runner.invoke(app, ["--no-config", "evaluate", "--model", str(result.path), "--data", str(eval_corpus),
                            "--evaluator", str(evaluator.path), "--steps", "51", "--low-source", "none"])  # fmt: skip
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "model's 50 training timesteps" in r.stderr, r.output
