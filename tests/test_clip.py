"""CLIP text features as MDM (context 22) and the seed (context 42) compute them (checkpoint-interop.md sec. 3).

No package ships CLIP weights, so the tests use RANDOM weights in OpenAI's ViT-B/32 text-tower layout and dtypes
(fp16 Linear/attention weights and text_projection, fp32 embeddings and LayerNorms: what MDM's ``convert_weights``
leaves) and the real BPE vocabulary of open_clip_torch. References: open_clip's ``ViT-B-32-quickgelu`` with the same
weights (which the facts found bitwise equal to OpenAI's own code), and an open_clip-free recomputation of OpenAI's
``encode_text`` from the facts' description. Everything runs offline.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from motiongpt_cli.cli import app
from motiongpt_cli.text.clip import FULL_CONTEXT, clip_encoder_name, tokenize
from motiongpt_cli.text.encoders import load_encoder

open_clip = pytest.importorskip("open_clip")

DATA = Path(__file__).parent / "data" / "interop"
WIDTH, LAYERS, HEADS, VOCAB = 512, 12, 8, 49408
SOT, EOT = 49406, 49407
TEXTS = [
    "a person walks",
    "a man walks forward slowly, then turns around to the left, sits down on a chair, stands up again and waves "
    "with both hands while jumping up and down, before he runs in a circle, stops, crouches low and finally lies "
    "down on the floor to rest",
    'A person—jumps! Then, "walks" backwards... & waves (twice); 3 steps?',
    "the &amp; html entity and   extra   spaces",
    "",
]
runner = CliRunner()


def name(context: int, precision: str = "fp16") -> str:
    return clip_encoder_name("ViT-B-32-quickgelu/openai", context_length=context, precision=precision)  # type: ignore[arg-type]


def openai_text_tower(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with the names, shapes and dtypes of OpenAI's ViT-B/32 text tower after convert_weights.
    Scales follow CLIP's own initialisation; biases and LayerNorm affines are non-trivial so that they matter."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int, std: float, dtype=torch.float16, mean: float = 0.0) -> torch.Tensor:
        return (mean + std * torch.randn(*shape, generator=g)).to(dtype)

    f32, proj_std = torch.float32, WIDTH**-0.5 * (2 * LAYERS) ** -0.5
    sd = {"token_embedding.weight": r(VOCAB, WIDTH, std=0.02, dtype=f32),
          "positional_embedding": r(FULL_CONTEXT, WIDTH, std=0.01, dtype=f32)}  # fmt: skip
    for i in range(LAYERS):
        p = f"transformer.resblocks.{i}."
        for ln in ("ln_1", "ln_2"):
            sd[f"{p}{ln}.weight"] = r(WIDTH, std=0.1, mean=1.0, dtype=f32)
            sd[f"{p}{ln}.bias"] = r(WIDTH, std=0.05, dtype=f32)
        sd[p + "attn.in_proj_weight"] = r(3 * WIDTH, WIDTH, std=WIDTH**-0.5)
        sd[p + "attn.in_proj_bias"] = r(3 * WIDTH, std=0.02)
        sd[p + "attn.out_proj.weight"] = r(WIDTH, WIDTH, std=proj_std)
        sd[p + "attn.out_proj.bias"] = r(WIDTH, std=0.02)
        sd[p + "mlp.c_fc.weight"] = r(4 * WIDTH, WIDTH, std=(2 * WIDTH) ** -0.5)
        sd[p + "mlp.c_fc.bias"] = r(4 * WIDTH, std=0.02)
        sd[p + "mlp.c_proj.weight"] = r(WIDTH, 4 * WIDTH, std=proj_std)
        sd[p + "mlp.c_proj.bias"] = r(WIDTH, std=0.02)
    sd["ln_final.weight"] = r(WIDTH, std=0.1, mean=1.0, dtype=f32)
    sd["ln_final.bias"] = r(WIDTH, std=0.05, dtype=f32)
    sd["text_projection"] = r(WIDTH, WIDTH, std=WIDTH**-0.5)
    sd["logit_scale"] = torch.tensor(float(np.log(1 / 0.07)))
    return sd


@pytest.fixture(scope="module")
def tower() -> dict[str, torch.Tensor]:
    return openai_text_tower(0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tower) -> Path:
    """A folder holding the weights as `motiongpt model import` stores them (clip.safetensors)."""
    root = tmp_path_factory.mktemp("clipmodel")
    save_file({k: v.contiguous() for k, v in tower.items()}, str(root / "clip.safetensors"))
    return root


def padded_tokens(texts: list[str], context: int) -> torch.Tensor:
    return F.pad(open_clip.tokenize(texts, context_length=context), (0, FULL_CONTEXT - context))


def open_clip_features(tower: dict, arch: str, precision: str, tokens: torch.Tensor) -> np.ndarray:
    root = logging.getLogger()
    was, root.disabled = root.disabled, True
    try:
        model = open_clip.create_model(arch, pretrained=None, precision=precision).eval()
    finally:
        root.disabled = was
    result = model.load_state_dict(tower, strict=False)
    assert not result.unexpected_keys and all(k.startswith("visual.") for k in result.missing_keys)
    with torch.no_grad():
        return model.encode_text(tokens).float().numpy()


def openai_recipe_features(tower: dict, tokens: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    """OpenAI's ``encode_text`` as checkpoint-interop.md sec. 3.1 describes it, without open_clip: token +
    positional embedding cast to the model dtype, sequence-first residual blocks (x + attn(ln_1 x), x + mlp(ln_2 x),
    MLP with QuickGELU x*sigmoid(1.702x)), LayerNorm computed in fp32 and cast back, the causal mask in the model
    dtype, ln_final, the EOT (argmax id) token @ text_projection."""
    w = {k: (v if v.dtype == torch.float32 and ("ln" in k or "embedding" in k) else v.to(dtype))
         for k, v in tower.items()}  # fmt: skip

    def ln(x, prefix):
        return F.layer_norm(x.float(), (WIDTH,), w[prefix + ".weight"], w[prefix + ".bias"], 1e-5).to(dtype)

    n = tokens.shape[1]
    mask = torch.full((n, n), float("-inf")).triu(1).to(dtype)
    with torch.no_grad():
        x = F.embedding(tokens, w["token_embedding.weight"]).to(dtype) + w["positional_embedding"].to(dtype)
        x = x.permute(1, 0, 2)
        for i in range(LAYERS):
            p = f"transformer.resblocks.{i}."
            h = ln(x, p + "ln_1")
            a, _ = F.multi_head_attention_forward(
                h, h, h, WIDTH, HEADS, w[p + "attn.in_proj_weight"], w[p + "attn.in_proj_bias"], None, None, False,
                0.0, w[p + "attn.out_proj.weight"], w[p + "attn.out_proj.bias"], training=False, need_weights=False,
                attn_mask=mask,
            )  # fmt: skip
            x = x + a
            h = F.linear(ln(x, p + "ln_2"), w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"])
            x = x + F.linear(h * torch.sigmoid(1.702 * h), w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"])
        x = ln(x.permute(1, 0, 2), "ln_final")
        return (x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ w["text_projection"]).float().numpy()


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.linalg.norm(a - b, axis=-1) / np.linalg.norm(b, axis=-1)))


# ---------------------------------------------------------------------------------------------- (a) tokens
@pytest.mark.parametrize("context", [22, 42])
def test_tokens_truncate_with_eot_overwrite_and_zero_pad_to_77(context):
    ours = tokenize(TEXTS, context)
    assert ours.shape == (len(TEXTS), FULL_CONTEXT) and ours.dtype == torch.int64
    assert torch.equal(ours[:, :context], open_clip.tokenize(TEXTS, context_length=context))
    assert torch.all(ours[:, context:] == 0)
    full = open_clip.tokenize(TEXTS, context_length=FULL_CONTEXT)
    assert torch.all(ours[:, 0] == SOT)
    for i, text in enumerate(TEXTS):
        n = int((full[i] != 0).sum())  # SOT + BPE tokens + EOT at full context
        if n <= context:  # short: the same ids as CLIP's usual 77-token tokenization
            assert torch.equal(ours[i], full[i]), text
        else:  # long: SOT + the first context-2 BPE tokens, then EOT overwrites the last kept position
            assert torch.equal(ours[i, : context - 1], full[i, : context - 1]) and ours[i, context - 1] == EOT, text
    long = int((full[1] != 0).sum())
    assert long > 42, "the long caption must be truncated at both contexts"
    assert ours[4, :3].tolist() == [SOT, EOT, 0]  # the empty caption
    assert all(int(row.argmax()) == int((row == EOT).nonzero()[0]) for row in ours)  # EOT pooling finds it


# ---------------------------------------------------------------------------------------------- (b) features
@pytest.mark.parametrize("context, precision", [(22, "fp32"), (22, "fp16"), (42, "fp16")])
def test_features_equal_open_clip_and_the_openai_recipe(tower, model_dir, context, precision):
    encoder = load_encoder(name(context, precision), model_dir=model_dir, weights="clip.safetensors")
    ours = encoder.encode(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 512) and encoder.dim == 512
    tokens = padded_tokens(TEXTS, context)
    reference = open_clip_features(tower, "ViT-B-32-quickgelu", precision, tokens)
    recipe = openai_recipe_features(tower, tokens, torch.float32 if precision == "fp32" else torch.float16)
    measured = {"open_clip": float(np.abs(ours - reference).max()), "recipe": float(np.abs(ours - recipe).max())}
    print(f"ctx{context} {precision}: max abs vs open_clip {measured['open_clip']:.3g}, vs recipe "
          f"{measured['recipe']:.3g}, |f| max {np.abs(reference).max():.3g}")  # fmt: skip
    if precision == "fp32":
        # the same arithmetic, but BLAS picks its kernels per CPU and shape: measured within 1e-6 on an Intel Xeon,
        # 2.6e-6 on an AMD EPYC (AVX-512) with features up to 3.3 in size, i.e. a few float32 steps
        assert measured["open_clip"] <= 2e-6 * max(1.0, float(np.abs(reference).max()))
        np.testing.assert_allclose(ours, recipe, atol=1e-5, rtol=0)  # another attention kernel: not bitwise
    else:  # fp16 features are ~3.5 in size here, where one fp16 step is 2e-3: compare relative to the row norm
        assert rel_l2(ours, reference) <= 1e-3, measured  # measured: bitwise equal
        # CPU fp16 matmuls round differently for another memory layout (the recipe's sequence-first tensors):
        # measured 1.9e-3 relative after 12 layers, the size of the fp16-vs-fp32 gap itself
        assert rel_l2(ours, recipe) <= 5e-3, measured
    assert not np.allclose(np.linalg.norm(ours, axis=1), 1.0), "MDM's features are not L2-normalised"


def test_fp16_recipe_differs_from_fp32_by_about_1e_3(model_dir):
    fp16 = load_encoder(name(22, "fp16"), model_dir=model_dir, weights="clip.safetensors").encode(TEXTS)
    fp32 = load_encoder(name(22, "fp32"), model_dir=model_dir, weights="clip.safetensors").encode(TEXTS)
    diff = rel_l2(fp16, fp32)
    print(f"fp16 vs fp32 recipe: relative L2 {diff:.3g}, max abs {np.abs(fp16 - fp32).max():.3g}")
    assert 1e-5 < diff < 1e-2


# ---------------------------------------------------------------------------------------------- (c) QuickGELU
def test_plain_vit_b_32_uses_gelu_and_gives_other_features(tower, model_dir):
    encoder = load_encoder(name(22, "fp32"), model_dir=model_dir, weights="clip.safetensors")
    ours = encoder.encode(TEXTS)
    assert type(encoder.model.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    gelu = open_clip_features(tower, "ViT-B-32", "fp32", padded_tokens(TEXTS, 22))
    print(f"ViT-B-32 (GELU) vs quickgelu: relative L2 {rel_l2(gelu, ours):.3g}, max abs "
          f"{np.abs(gelu - ours).max():.3g}")
    assert rel_l2(gelu, ours) > 1e-3


# ---------------------------------------------------------------------------------------------- cache identity
def test_cache_key_carries_the_weights_identity(tmp_path, tower, model_dir):
    """Same encoder name, same cache, other weights: the second model's features are its own, not the cache's."""
    other = tmp_path / "other"
    other.mkdir()
    save_file({k: v.contiguous() for k, v in openai_text_tower(1).items()}, str(other / "clip.safetensors"))
    cache = tmp_path / "cache"
    a = load_encoder(name(22, "fp32"), model_dir=model_dir, weights="clip.safetensors", cache_dir=cache)
    b = load_encoder(name(22, "fp32"), model_dir=other, cache_dir=cache)  # found as the model dir's clip.safetensors
    assert a is not b and a.cache_key != b.cache_key and a.cache_key.startswith(a.name + "|sha256:")
    fa, fb = a.encode(TEXTS[:2]), b.encode(TEXTS[:2])
    assert not np.allclose(fa, fb)
    np.testing.assert_array_equal(fb, open_clip_features(openai_text_tower(1), "ViT-B-32-quickgelu", "fp32",
                                                         padded_tokens(TEXTS[:2], 22)))  # fmt: skip
    np.testing.assert_array_equal(a.encode(TEXTS[:2]), fa)


# ---------------------------------------------------------------------------------------------- (d) lazy
def test_building_the_encoder_imports_no_open_clip_until_a_cache_miss(tmp_path, model_dir):
    code = (
        "import json, sys\n"
        "from motiongpt_cli.text.encoders import load_encoder\n"
        f"enc = load_encoder({name(22)!r}, model_dir={str(model_dir)!r}, weights='clip.safetensors', "
        f"cache_dir={str(tmp_path)!r})\n"
        "seen = ['open_clip' in sys.modules, enc.dim]\n"
        "enc.encode(['a person walks'])\n"
        "seen.append('open_clip' in sys.modules)\n"
        "print(json.dumps(seen))\n"
    )
    run = [sys.executable, "-c", code]
    done = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # a miss, then the same text again in a new process: served by the cache (the file hash is remembered too)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [False, 512, True]
    done = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [False, 512, False]


# ---------------------------------------------------------------------------------------------- CLI: import, generate
@pytest.fixture(scope="module")
def norm(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("humanml3d")
    rng = np.random.default_rng(0)
    np.save(root / "Mean.npy", rng.standard_normal(263).astype(np.float32) * 0.1)
    np.save(root / "Std.npy", (0.5 + rng.random(263)).astype(np.float32))
    return root


def import_fixture(tmp_path: Path, norm: Path, extra: dict | None = None) -> Path:
    """The MDM fixture checkpoint (with ``extra`` keys added) imported through `motiongpt model import`."""
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    state = torch.load(DATA / "mdm_trans_enc.pt", map_location="cpu", weights_only=True)
    torch.save({**state, **(extra or {})}, ckpt / "model000000001.pt")
    (ckpt / "args.json").write_text((DATA / "mdm_trans_enc_args.json").read_text())
    result = runner.invoke(app, ["--no-config", "model", "import", "mdm", str(ckpt / "model000000001.pt"), "-o",
                                 str(tmp_path / "model"), "--humanml3d", str(norm)])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return tmp_path / "model"


def offline_env(tmp_path: Path) -> dict[str, str]:
    """HOME and every cache at empty folders, and the Hugging Face hub told not to try the network."""
    home = tmp_path / "home"
    env = {"HOME": str(home), "MOTIONGPT_HOME": str(home / "motiongpt"), "XDG_CACHE_HOME": str(home / ".cache"),
           "HF_HOME": str(home / "hf"), "HF_HUB_OFFLINE": "1", "TORCH_HOME": str(home / "torch")}  # fmt: skip
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("MOTIONGPT_", "HF_"))}, **env}


def run_cli_in_subprocess(args: list[str], env: dict[str, str]) -> dict:
    """CliRunner in a fresh process, so the environment (HF cache, offline flag) is read when the libraries load."""
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from motiongpt_cli.cli import app\n"
        f"r = CliRunner().invoke(app, {json.dumps(args)})\n"
        "print(json.dumps({'code': r.exit_code, 'stdout': r.stdout, 'stderr': r.stderr}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_offline_without_clip_weights_is_one_error_line_naming_the_file(tmp_path, norm):
    model = import_fixture(tmp_path, norm)
    assert not (model / "clip.safetensors").exists()
    r = run_cli_in_subprocess(["--no-config", "generate", "--model", str(model), "a walk", "-n", "1", "--frames",
                               "40", "--steps", "2", "-o", str(tmp_path / "out")], offline_env(tmp_path))  # fmt: skip
    assert r["code"] == 1, r
    errors = [line for line in r["stderr"].splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in r["stderr"], r["stderr"]
    assert "not available offline" in errors[0] and "open_clip_model.safetensors" in errors[0]
    assert "huggingface.co/timm/vit_base_patch32_clip_224.openai" in errors[0]
    assert str(model / "clip.safetensors") in errors[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_imported_checkpoint_with_clip_model_generates_offline(tmp_path, norm, tower):
    """MDM before 2022-12 saved its CLIP as clip_model.* (fp16 Linear weights, fp32 embeddings and LayerNorms);
    import keeps the text tower and generate runs on it with no download and no stub."""
    extra = {f"clip_model.{k}": v for k, v in tower.items()}
    extra["clip_model.visual.conv1.weight"] = torch.zeros(768, 3, 32, 32, dtype=torch.float16)  # dropped on import
    model = import_fixture(tmp_path, norm, extra)
    config = json.loads((model / "config.json").read_text())
    assert config["text"]["high_weights"] == "clip.safetensors"
    assert config["text"]["high_encoder"] == "clip:ViT-B-32-quickgelu/openai@ctx22,fp16,raw"
    stored = load_file(str(model / "clip.safetensors"))
    assert stored.keys() == tower.keys() and all(torch.equal(stored[k], v) for k, v in tower.items())
    assert stored["text_projection"].dtype == torch.float16 and stored["ln_final.weight"].dtype == torch.float32
    out = tmp_path / "out"
    r = run_cli_in_subprocess(["--no-config", "generate", "--model", str(model), "a person walks", "-n", "2",
                               "--frames", "40", "--steps", "5", "--seed", "1", "-o", str(out)],
                              offline_env(tmp_path))  # fmt: skip
    assert r["code"] == 0, r["stderr"]
    assert sorted(p.name for p in out.iterdir()) == ["a-person-walks-00.bvh", "a-person-walks-00.npz",
                                                     "a-person-walks-01.bvh", "a-person-walks-01.npz"]  # fmt: skip
    with np.load(out / "a-person-walks-00.npz", allow_pickle=False) as z:
        assert z["features"].shape == (40, 263) and np.all(np.isfinite(z["joints"]))
    # the condition really came from the stored CLIP: the cache holds the recipe's feature under the file's hash
    cache = load_encoder(config["text"]["high_encoder"], model_dir=model, weights="clip.safetensors",
                         cache_dir=tmp_path / "home" / "motiongpt" / "cache")  # fmt: skip
    cached = cache.cache.get_many(cache.cache_key, ["a person walks"])
    assert "a person walks" in cached and not cache.loaded
    reference = open_clip_features(tower, "ViT-B-32-quickgelu", "fp16", padded_tokens(["a person walks"], 22))
    assert rel_l2(cached["a person walks"][None], reference) <= 1e-3


# ---------------------------------------------------------------------------------------------- --clip FILE
class _Block(torch.nn.Module):
    """One residual block with OpenAI's attribute names (clip/model.py ResidualAttentionBlock)."""

    def __init__(self, width: int, heads: int, mask: torch.Tensor) -> None:
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(width, heads)
        self.ln_1 = torch.nn.LayerNorm(width)
        self.mlp = torch.nn.Sequential(OrderedDict(c_fc=torch.nn.Linear(width, 4 * width), gelu=torch.nn.Identity(),
                                                   c_proj=torch.nn.Linear(4 * width, width)))  # fmt: skip
        self.ln_2 = torch.nn.LayerNorm(width)
        self.attn_mask = mask  # a plain attribute, as OpenAI's (not a buffer: not in the state dict)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attn(x, x, x, need_weights=False, attn_mask=self.attn_mask)[0]


class _OpenAIClip(torch.nn.Module):
    """OpenAI's CLIP module tree (text tower full size; a one-tensor stand-in for the visual tower), so that a
    traced copy is a TorchScript archive with the real file's names. ``forward`` only embeds: tracing keeps every
    parameter whatever the forward uses, and the reader never looks at the code."""

    def __init__(self, width: int = WIDTH, layers: int = LAYERS, heads: int = HEADS, vocab: int = VOCAB) -> None:
        super().__init__()
        mask = torch.full((FULL_CONTEXT, FULL_CONTEXT), float("-inf")).triu(1)
        self.visual = torch.nn.Module()
        self.visual.conv1 = torch.nn.Conv2d(3, 4, 2, bias=False)
        self.transformer = torch.nn.Module()
        self.transformer.resblocks = torch.nn.Sequential(*[_Block(width, heads, mask) for _ in range(layers)])
        self.token_embedding = torch.nn.Embedding(vocab, width)
        self.positional_embedding = torch.nn.Parameter(torch.randn(FULL_CONTEXT, width))
        self.ln_final = torch.nn.LayerNorm(width)
        self.text_projection = torch.nn.Parameter(torch.randn(width, 512))
        self.logit_scale = torch.nn.Parameter(torch.ones([]))

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.token_embedding(text) + self.positional_embedding


def openai_torchscript(tower: dict, path: Path) -> Path:
    """``tower`` (dtypes kept: fp16 Linear weights, fp32 embeddings) saved as a traced TorchScript archive, the
    form of OpenAI's ViT-B-32.pt."""
    import warnings

    module = _OpenAIClip()
    result = module.load_state_dict(tower, strict=False, assign=True)
    assert result.missing_keys == ["visual.conv1.weight"] and not result.unexpected_keys
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.trace is deprecated; the file format is what matters here
        torch.jit.trace(module.eval(), torch.zeros(1, FULL_CONTEXT, dtype=torch.long)).save(str(path))
    return path


@pytest.fixture(scope="module")
def torchscript_file(tmp_path_factory, tower) -> Path:
    return openai_torchscript(tower, tmp_path_factory.mktemp("openai") / "ViT-B-32.pt")


def test_torchscript_archive_is_read_without_running_code(torchscript_file, tower):
    """The archive's tensors equal what torch.jit.load (which compiles and runs the archive's code; used here on
    our own file only) gives, names and dtypes included; the text tower is the tower we saved."""
    import warnings
    import zipfile

    from motiongpt_cli.text.clip_weights import is_torchscript, read_clip_state, text_tower

    names = zipfile.ZipFile(torchscript_file).namelist()
    assert any("/code/" in n for n in names) and any(n.endswith("/constants.pkl") for n in names)
    assert is_torchscript(torchscript_file)
    ours = read_clip_state(torchscript_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jit = torch.jit.load(str(torchscript_file)).state_dict()
    assert ours.keys() == jit.keys() and all(torch.equal(ours[k], jit[k]) and ours[k].dtype == jit[k].dtype
                                             for k in jit)  # fmt: skip
    text = text_tower(ours, "ViT-B-32-quickgelu", "x")
    assert text.keys() == set(tower) - {"logit_scale"}
    assert all(torch.equal(text[k], tower[k]) and text[k].dtype == tower[k].dtype for k in text)


def test_scripted_archive_keeps_non_parameter_attributes_apart(tmp_path):
    """torch.jit.script (not trace) pickles plain tensor attributes too (OpenAI's attn_mask): read, then dropped."""
    import warnings

    from motiongpt_cli.text.clip_weights import read_torchscript_tensors, text_tower

    module = _OpenAIClip(width=16, layers=2, heads=2, vocab=50).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(module).save(str(tmp_path / "scripted.pt"))
    tensors = read_torchscript_tensors(tmp_path / "scripted.pt")
    state = module.state_dict()
    assert set(tensors) - set(state) == {"transformer.resblocks.0.attn_mask", "transformer.resblocks.1.attn_mask"}
    assert all(torch.equal(tensors[k], v) for k, v in state.items())
    with pytest.raises(Exception, match="not a CLIP ViT-B-32-quickgelu text tower: missing transformer.resblocks.2"):
        text_tower(tensors, "ViT-B-32-quickgelu", "scripted.pt")


def test_import_with_clip_torchscript_gives_the_same_features(tmp_path, norm, tower, torchscript_file, model_dir):
    """`model import --clip ViT-B-32.pt`: the text tower is kept as clip.safetensors (bitwise, dtypes kept), and the
    imported model's CLIP features equal those of the same weights loaded directly."""
    model = tmp_path / "model"
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model000000001.pt").write_bytes((DATA / "mdm_trans_enc.pt").read_bytes())
    (ckpt / "args.json").write_text((DATA / "mdm_trans_enc_args.json").read_text())
    r = runner.invoke(app, ["--no-config", "model", "import", "mdm", str(ckpt / "model000000001.pt"), "-o", str(model),
                            "--humanml3d", str(norm), "--clip", str(torchscript_file)])  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "TorchScript archive, read without running its code" in r.stderr
    config = json.loads((model / "config.json").read_text())
    assert config["text"]["high_weights"] == "clip.safetensors"
    assert config["source"]["clip"]["file"] == "ViT-B-32.pt" and len(config["source"]["clip"]["sha256"]) == 64
    stored = load_file(str(model / "clip.safetensors"))
    assert stored.keys() == set(tower) - {"logit_scale"}
    assert all(torch.equal(stored[k], tower[k]) and stored[k].dtype == tower[k].dtype for k in stored)
    imported = load_encoder(config["text"]["high_encoder"], model_dir=model, weights="clip.safetensors")
    direct = load_encoder(name(22), model_dir=model_dir, weights="clip.safetensors")
    assert imported is not direct
    np.testing.assert_array_equal(imported.encode(TEXTS), direct.encode(TEXTS))


@pytest.mark.parametrize("layout", ["bin", "bin-state_dict", "safetensors"])
def test_open_clip_checkpoints_are_accepted(tmp_path, tower, layout):
    """open_clip's open_clip_pytorch_model.bin / open_clip_model.safetensors (fp32 copies of OpenAI's values, visual
    tower included) and a training checkpoint's {"state_dict": {"module.<key>"}} give the same text tower."""
    from motiongpt_cli.text.clip import read_weights

    full = {k: v.float() for k, v in tower.items()} | {"visual.conv1.weight": torch.zeros(768, 3, 32, 32)}
    if layout == "safetensors":
        path = tmp_path / "open_clip_model.safetensors"
        save_file(full, str(path))
    else:
        path = tmp_path / "open_clip_pytorch_model.bin"
        torch.save(full if layout == "bin" else {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in full.items()}},
                   path)  # fmt: skip
    text = read_weights(path)
    assert text.keys() == set(tower) - {"logit_scale"}
    assert all(torch.equal(text[k], tower[k].float()) for k in text)


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # would create the marker file if unpickled


def _evil_torchscript(path: Path, marker: Path) -> Path:
    """A zip laid out like a TorchScript archive (code/, data.pkl) whose data.pkl would call open() when
    unpickled."""
    import pickle
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/code/__torch__.py", "def forward(self):\n  return None\n")
        z.writestr("evil/data.pkl", pickle.dumps({"positional_embedding": _RunsCode(marker)}, protocol=2))
        z.writestr("evil/version", "3\n")
    return path


@pytest.mark.parametrize("kind", ["torchscript", "pickle"])
def test_a_clip_file_that_would_run_code_is_refused_with_one_line(tmp_path, norm, kind):
    marker = tmp_path / "pwned"
    clip = tmp_path / "ViT-B-32.pt"
    if kind == "torchscript":
        _evil_torchscript(clip, marker)
    else:
        torch.save({"positional_embedding": _RunsCode(marker)}, clip)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model000000001.pt").write_bytes((DATA / "mdm_trans_enc.pt").read_bytes())
    (ckpt / "args.json").write_text((DATA / "mdm_trans_enc_args.json").read_text())
    r = runner.invoke(app, ["--no-config", "model", "import", "mdm", str(ckpt / "model000000001.pt"), "-o",
                            str(tmp_path / "model"), "--humanml3d", str(norm), "--clip", str(clip)])  # fmt: skip
    assert r.exit_code == 1, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "refused" in errors[0] and "Traceback" not in r.stderr, r.stderr
    assert "asks for io.open" in errors[0]  # the global it wanted, named
    assert not marker.exists() and not (tmp_path / "model").exists()
