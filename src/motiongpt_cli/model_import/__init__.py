"""Import MDM's and the seed's (humansensinglab/MotionGPT) released checkpoints as our model directory.

Facts used (``checkpoint-interop.md``): a checkpoint is ``torch.save`` of a state dict, either plain or
``{'model', 'model_avg'}`` (EMA; we take ``model_avg``), possibly with ``clip_model.*`` (the frozen CLIP, in checkpoints
from before MDM's 2022-12-01 fix), always with the positional table twice (``sequence_pos_encoder.pe`` and
``embed_timestep.sequence_pos_encoder.pe``, recomputed here), and, for the seed, ``embed_babel_text.*`` plus the
frozen all-MiniLM-L6-v2 under ``babel_model.0.auto_model.*`` (sentence-transformers < 3) or ``babel_model.0.model.*``
(newer), with or without the persistent ``embeddings.position_ids`` of transformers <= 4.30.

Files are read with ``torch.load(weights_only=True)`` only: a file whose unpickling would need anything but tensors
and plain containers is refused, and no code in it runs. CLIP weights given with ``--clip`` (OpenAI's TorchScript
``ViT-B-32.pt``, or an open_clip file) are read without running code too (:mod:`..text.clip_weights`). Key names
map one to one onto :class:`MotionDenoiser`; an unknown or missing key is an error that names it. The architecture
comes from the weights' shapes (MDM hard-codes 4 heads); the diffusion settings from ``args.json`` (the training
arguments, beside the checkpoint). Reading and key mapping are in :mod:`.state`, the other files in :mod:`.files`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .files import (
    CLIP_ARCH,
    CLIP_FILE,
    LOW_ENCODER_DIR,
    _clip_file,
    _given_clip_file,
    _low_encoder_files,
    packaged_minilm,
    read_args,
    read_normalization,
    tensors_digest,
)
from .state import (
    FAMILY_NAMES,
    KINDS,
    CheckpointImportError,
    Kind,
    SplitState,
    _listing,
    _original_name,
    detect_family,
    read_checkpoint,
    select_state_dict,
    split_state_dict,
)

__all__ = ["CLIP_ARCH", "CLIP_FILE", "FAMILY_NAMES", "KINDS", "LOW_ENCODER_DIR", "CheckpointImportError",
           "ImportOptions", "ImportResult", "Kind", "SplitState", "detect_family", "import_checkpoint",
           "packaged_minilm", "read_args", "read_checkpoint", "read_normalization", "select_state_dict",
           "split_state_dict", "tensors_digest"]  # fmt: skip

MDM_HEADS = 4  # utils/model_util.py::get_model_args hard-codes num_heads=4 (not in args.json)
MAX_FRAMES = 196  # HumanML3D's longest clip; MDM samples at most 196 frames
GUIDANCE = 2.5  # --guidance_param default of MDM and the seed
# MDM truncates CLIP input at max_text_len (20 for HumanML3D, the seed's CLIP 40) + SOT + EOT, zero-padded to 77
CLIP_CONTEXT = {"mdm": 22, "motiongpt": 42}
# args.json fields that change what the weights compute or how they are sampled (kept in config.json)
RELEVANT_ARGS = ("arch", "dataset", "latent_dim", "layers", "cond_mask_prob", "emb_trans_dec", "noise_schedule",
                 "diffusion_steps", "sigma_small", "text_encoder_type", "mask_frames", "pos_embed_max_len",
                 "use_ema", "context_len", "pred_len", "second_llm", "cond_mode", "unconstrained",
                 "lambda_rcxyz", "lambda_vel", "lambda_fc")  # fmt: skip


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


def import_checkpoint(path: Path, out: Path, options: ImportOptions) -> ImportResult:
    """Read ``path`` (an MDM-family ``.pt``), check it, and write our model directory at ``out``."""
    import torch

    from ..atomic import check_writable
    from ..checkpoint import TextConfig, model_config, write_model_dir
    from ..diffusion.denoiser import DenoiserConfig, MotionDenoiser
    from ..diffusion.schedule import NoiseSchedule

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
    from ..text.clip import clip_encoder_name

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
