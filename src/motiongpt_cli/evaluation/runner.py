"""`motiongpt evaluate`: the standard metrics of a model against real motion, over replications, with gates.

One replication: a fresh random subset of the split's clips (``limit`` of them, all by default), each with a random
caption and a random crop (multiple of 4 frames) as the HumanML3D loader makes them; the real motions are encoded,
and the model generates one motion per clip for the same caption and length, conditioned on the clip's low-level
text (``gt``), a proposed one (``prompt``) or none. Metrics per replication (see :mod:`.metrics`):

- generated: R-precision top-1/2/3 and MM-Dist (captions vs generated motions), FID (real vs generated
  embeddings), Diversity, and optionally MultiModality (``mm_texts`` captions x ``mm_repeats`` motions);
- real motion: the same, with FID between two independent real passes (different crops and captions).

Each metric is reported as the mean over replications and a 95% interval. Everything is seeded.

Protocols (named in every output, so numbers are compared with the right column of published tables):

- ``standard``: every caption encoded with its true length (MDM's fix of bug #182, January 2024), and the whole
  split (or ``limit`` clips) generated in every replication;
- ``legacy``: the computation behind MDM's original numbers and the seed paper's Table 1: the generated row's
  captions are encoded as if 22 tokens long (the padded length), and only the first 1,024 clips of each shuffled
  replication are generated (MDM's 32 batches of 32), while FID's real statistics still use every clip.
  Only the T2M evaluator reads caption lengths; with a sentence evaluator the two differ only in the 1,024 cap.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import validation
from ..errors import InvalidValueError, MotionGPTError
from .metrics import diversity, fid, matching_score, mean_ci, multimodality, r_precision

METRICS = ("r_precision_top1", "r_precision_top2", "r_precision_top3", "fid", "mm_dist", "diversity",
           "multimodality")  # fmt: skip
ALIASES = {"r1": "r_precision_top1", "r2": "r_precision_top2", "r3": "r_precision_top3", "top1": "r_precision_top1",
           "top2": "r_precision_top2", "top3": "r_precision_top3", "matching_score": "mm_dist",
           "mm": "multimodality"}  # fmt: skip
PROTOCOLS = ("standard", "legacy")
LEGACY_GENERATED = 1024  # MDM's generated loader: min(1000 // 32 + 1, batches) = 32 batches of 32
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


@dataclass
class EvalOptions:
    split: str = "test"
    replications: int = 20
    low_source: str = "gt"  # gt | prompt | none
    steps: int | None = None  # None: the model's default (DDIM 50 or its measured one; every diffusion step for an
    # imported DDPM model)
    guidance: float | None = None  # None: the model's recorded scale (2.5)
    sampler: str = "auto"  # auto | ddim | ddpm | lcm (auto: lcm for a distilled model, else ddim)
    eta: float = 0.0
    precision: str = "fp32"  # fp32 | bf16 | int8 | auto (resolved for the device)
    limit: int | None = None
    mm_texts: int = 0
    mm_repeats: int = 30
    seed: int = 0
    batch_size: int = 32
    protocol: str = "standard"  # standard | legacy

    def __post_init__(self) -> None:
        if self.low_source not in ("gt", "prompt", "none"):
            raise InvalidValueError(f"low_source must be gt, prompt or none, got {self.low_source!r}")
        if self.protocol not in PROTOCOLS:
            raise InvalidValueError(f"protocol must be {' or '.join(PROTOCOLS)}, got {self.protocol!r}")
        validation.REPLICATIONS.check("replications", self.replications)
        if self.sampler not in ("auto", "ddim", "ddpm", "lcm"):
            raise InvalidValueError(f"sampler must be auto, ddim, ddpm or lcm, got {self.sampler!r}")
        if self.steps is not None:
            validation.STEPS.check("steps", self.steps)
        if self.guidance is not None:
            validation.GUIDANCE.check("guidance", self.guidance)
        validation.ETA.check("eta", self.eta)
        if self.limit is not None:
            validation.EVAL_LIMIT.check("limit", self.limit)
        validation.MM_TEXTS.check("mm_texts", self.mm_texts)
        validation.MM_REPEATS.check("mm_repeats", self.mm_repeats)
        validation.SEED.check("seed", self.seed)
        validation.BATCH_SIZE.check("batch_size", self.batch_size)


@dataclass
class EvalResult:
    rows: dict[str, dict[str, tuple[float, float]]]
    options: EvalOptions
    clips: int
    per_replication: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    prompting: dict[str, int | str] | None = None  # with low_source "prompt": backend, proposals, fallbacks
    sampling: dict[str, object] | None = None  # what sampled the generated rows: sampler, steps, guidance, eta

    def to_json(self) -> dict:
        return {
            "protocol": self.options.protocol, "split": self.options.split,
            "replications": self.options.replications, "clips": self.clips,
            "low_source": self.options.low_source, **(self.sampling or {}), "seed": self.options.seed,
            "rows": {name: {m: {"mean": round(v[0], 5), "ci95": round(v[1], 5)} for m, v in row.items()}
                     for name, row in self.rows.items()},
            **({"prompting": self.prompting} if self.prompting else {}),
        }  # fmt: skip


@dataclass
class Gate:
    metric: str
    op: str
    threshold: float

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


def parse_gate(text: str) -> Gate:
    """``"fid>0.5"``, ``"r1 < 0.3"``, ``"diversity<=2"``: the metric, a comparison, a number."""
    m = re.fullmatch(r"\s*([a-z_0-9]+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*", text or "")
    if not m:
        raise MotionGPTError(f"cannot read the condition {text!r}", hint='write it like "fid>0.5" or "r1<0.3"')
    name = ALIASES.get(m.group(1), m.group(1))
    if name not in METRICS:
        raise MotionGPTError(f"unknown metric {m.group(1)!r} in {text!r}",
                             hint=f"choose from {', '.join(METRICS)} (or r1, r2, r3)")  # fmt: skip
    try:
        threshold = float(m.group(3))
    except ValueError:
        raise MotionGPTError(f"not a number in {text!r}") from None
    return Gate(name, m.group(2), threshold)


def _metrics(text_emb, motion_emb, reference_emb, rng, *, diversity_times: int) -> dict[str, float]:
    rp = r_precision(text_emb, motion_emb)
    return {
        "r_precision_top1": float(rp[0]), "r_precision_top2": float(rp[1]), "r_precision_top3": float(rp[2]),
        "fid": fid(reference_emb, motion_emb), "mm_dist": matching_score(text_emb, motion_emb),
        "diversity": diversity(motion_emb, rng, times=diversity_times),
    }  # fmt: skip


def open_evaluator(path: Path, *, glove: Path | None = None, device: str = "cpu", cache_dir: Path | None = None):
    """An evaluator from ``path``: a folder made by ``motiongpt evaluate train-evaluator`` (has ``config.json``), or
    the standard T2M evaluator (a ``finest.tar``, or a folder holding one in the official download layout)."""
    from .learned import load_evaluator
    from .t2m import find_t2m_files, load_t2m_evaluator

    path = Path(path)
    if not path.exists():
        raise MotionGPTError(f"evaluator not found: {path}")
    if path.is_dir() and (path / "config.json").is_file():
        if glove is not None:
            raise MotionGPTError("--glove is for the T2M evaluator; this evaluator embeds sentences")
        return load_evaluator(path, device=device, cache_dir=cache_dir)
    found = find_t2m_files(path)
    if found is None:
        raise MotionGPTError(f"{path}: neither an evaluator made by `motiongpt evaluate train-evaluator` nor a T2M "
                             "evaluator (finest.tar)")  # fmt: skip
    checkpoint, stats, glove_found = found
    glove = glove if glove is not None else glove_found
    if glove is None:
        raise MotionGPTError(f"{path}: no GloVe vocabulary found for the T2M evaluator",
                             hint="pass --glove DIR (our_vab_data.npy, our_vab_words.pkl, our_vab_idx.pkl)")
    return load_t2m_evaluator(checkpoint, stats, glove, device=device)


def generated_count(n: int, protocol: str) -> int:
    """How many of a replication's ``n`` clips get a generated motion under ``protocol``."""
    return min(n, LEGACY_GENERATED) if protocol == "legacy" else n


def evaluate(
    loaded,
    records: list[dict],
    mean: np.ndarray,
    std: np.ndarray,
    evaluator,
    options: EvalOptions,
    *,
    prompter=None,
    device: str = "cpu",
    encoders: dict | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Evaluate ``loaded`` (a :class:`~motiongpt_cli.checkpoint.LoadedModel`); ``loaded=None`` gives the real row."""
    from ..data.dataset import DualTextDataset

    if options.replications < 1:
        raise MotionGPTError(f"replications must be at least 1, got {options.replications}")
    if options.low_source not in ("gt", "prompt", "none"):
        raise MotionGPTError(f"unknown low-level source {options.low_source!r} (gt, prompt or none)")
    if options.protocol not in PROTOCOLS:
        raise MotionGPTError(f"unknown protocol {options.protocol!r} (standard or legacy)")
    if options.low_source == "prompt" and prompter is None and loaded is not None:
        raise MotionGPTError("--low-source prompt needs a retrieval index or an LLM")
    sampling = None  # checked against the model before any work
    if loaded is not None:
        used = eval_sampling(loaded, options, device)
        sampling = {"sampler": used.sampler, "steps": used.steps, "guidance": used.guidance, "eta": used.eta,
                    "precision": used.precision}  # fmt: skip
    # one dataset (motions read once); each replication draws its crops and captions through two fresh epochs
    ds = DualTextDataset(records, mean, std, split=options.split, low_source="gt", seed=options.seed)
    n_all = len(ds)
    n = min(n_all, options.limit) if options.limit else n_all
    if n < 32:
        raise MotionGPTError(f"the {options.split} split has {n} usable clips; R-precision needs at least 32")
    n_gen = generated_count(n, options.protocol)
    total_units = options.replications * (n_gen + options.mm_texts * options.mm_repeats if loaded is not None else 1)
    done = 0
    rows: dict[str, list[dict[str, float]]] = {"real": [], "generated": []} if loaded is not None else {"real": []}
    prompting = {"backend": getattr(prompter, "backend", "?"), "proposals": 0, "fallbacks": 0} if (
        options.low_source == "prompt" and loaded is not None) else None  # fmt: skip
    for r in range(options.replications):
        rng = np.random.default_rng([options.seed, r])
        chosen = np.sort(rng.permutation(n_all)[:n])
        ds.set_epoch(2 * r)
        items = [ds[int(i)] for i in chosen]
        order = rng.permutation(n)  # shuffled batches, as the evaluation loaders
        items = [items[i] for i in order]
        real = [_raw(ds, it) for it in items]
        captions = [it["high"] for it in items]
        tokens = [it.get("tokens") for it in items]
        text_emb = evaluator.encode_captions(captions, tokens)
        real_emb = evaluator.encode_motion(real)
        ds.set_epoch(2 * r + 1)  # an independent real draw: different crops and captions
        real_b = evaluator.encode_motion([_raw(ds, ds[int(i)]) for i in chosen])
        rows["real"].append(_metrics(text_emb, real_emb, real_b, np.random.default_rng([options.seed, r, 1]),
                                     diversity_times=min(300, n)))  # fmt: skip
        if loaded is None:
            done += 1
            if on_progress:
                on_progress(done, total_units)
            continue
        items, captions = items[:n_gen], captions[:n_gen]
        gen_text_emb = text_emb[:n_gen]
        if options.protocol == "legacy":
            gen_text_emb = evaluator.encode_captions(captions, tokens[:n_gen], legacy_lengths=True)
        lows = _lows(items, options, prompter, seed=_prompt_seed(options.seed, r, 0), stats=prompting)
        lengths = [min(it["length"], loaded.model.config.max_frames) for it in items]

        def progress(k: int) -> None:
            nonlocal done
            done += k
            if on_progress:
                on_progress(done, total_units)

        seeds = [int(np.random.SeedSequence([options.seed, r, i]).generate_state(1)[0]) for i in range(n_gen)]
        gen = generate_features(loaded, captions, lows, lengths, seeds, options, encoders, device, progress)
        gen_emb = evaluator.encode_motion(gen)
        metrics = _metrics(gen_text_emb, gen_emb, real_emb, np.random.default_rng([options.seed, r, 2]),
                           diversity_times=min(300, n_gen))  # fmt: skip
        if options.mm_texts:
            metrics["multimodality"] = _multimodality(loaded, items, lows, evaluator, options, encoders, device, r,
                                                      progress, prompter, prompting)  # fmt: skip
        rows["generated"].append(metrics)
    summary = {name: {m: mean_ci([rep[m] for rep in reps]) for m in reps[0]} for name, reps in rows.items()}
    return EvalResult(summary, options, n, rows, prompting, sampling)


def _raw(ds, item) -> np.ndarray:
    """A dataset item's motion, cropped to its length and de-normalised."""
    return item["motion"][: item["length"]].numpy() * ds.std + ds.mean


def _lows(items, options: EvalOptions, prompter, seed: int, stats: dict | None = None) -> list[str | None]:
    if options.low_source == "none":
        return [None] * len(items)
    if options.low_source == "gt":
        return [it["low"] for it in items]
    results = prompter.run([it["high"] for it in items], n=1, seed=seed)
    _count(stats, results, 1)
    return [res.lows[0] for res in results]


def _prompt_seed(seed: int, replication: int, purpose: int) -> int:
    """A prompter seed per replication and purpose. The prompter adds query and sample offsets to it, so seeds
    are drawn far apart (not ``seed + r``), or replications would reuse each other's LLM seeds."""
    return int(np.random.SeedSequence([seed, replication, 11, purpose]).generate_state(1)[0] >> 1)


def _count(stats: dict | None, results, n: int) -> None:
    """Tally proposals and LLM fallbacks (answers replaced by retrieval) for the report."""
    if stats is not None:
        stats["proposals"] += n * len(results)
        stats["fallbacks"] += n * sum("fallback" in getattr(res, "backend", "") for res in results)


def eval_sampling(loaded, options: EvalOptions, device: str = "cpu"):
    """The :class:`SamplingOptions` an evaluation samples with: the options' values, the model's defaults for the
    rest (so ``--sampler ddpm`` on an imported model runs all of its diffusion steps, as its original's evaluation)."""
    from ..generation import sampling_options

    return sampling_options(loaded, sampler=options.sampler, steps=options.steps, guidance=options.guidance,
                            eta=options.eta, precision=options.precision, device=device)  # fmt: skip


def generate_features(loaded, highs, lows, lengths, seeds, options: EvalOptions, encoders, device, progress=None
                      ) -> list[np.ndarray]:  # fmt: skip
    """Raw (de-normalised) features, one motion per (high, low, length, seed), batched.

    A model without a frame mask (imported MDM and seed checkpoints) is sampled at its maximum length, 196 frames,
    and cropped to each clip's length: the original evaluation samples the ground-truth batch shape
    ``[32, 263, 1, 196]`` whatever the clip lengths, and without a mask the padding frames change the valid ones.
    With a mask (our models) the padding does not matter and each batch is as long as its longest clip. An
    imported model's guidance runs as its original's (two separate passes)."""
    from ..generation import Job, sample_batch

    out: list[np.ndarray] = []
    sampling = eval_sampling(loaded, options, device)
    full = None if loaded.model.config.mask_padding else loaded.model.config.max_frames
    for start in range(0, len(highs), options.batch_size):
        sl = slice(start, start + options.batch_size)
        jobs = [Job(0, 0, h, lo, "", s, "") for h, lo, s in zip(highs[sl], lows[sl], seeds[sl], strict=True)]
        sampled = lengths[sl] if full is None else [full] * len(jobs)
        feats = sample_batch(loaded, jobs, sampled, sampling, encoders, device=device)
        out.extend(feats[i, : lengths[sl][i]] for i in range(len(jobs)))
        if progress:
            progress(len(jobs))
    return out


def _multimodality(loaded, items, lows, evaluator, options, encoders, device, r, progress, prompter=None,
                   stats=None) -> float:  # fmt: skip
    """Motions of the first ``mm_texts`` captions, ``mm_repeats`` each. With proposed low-level texts each repeat
    gets its own proposal (the diversity the paper's prompting adds); with gt or none the text is fixed."""
    k, reps = min(options.mm_texts, len(items)), options.mm_repeats
    highs = [items[i]["high"] for i in range(k) for _ in range(reps)]
    if options.low_source == "prompt":
        proposals = prompter.run(highs[::reps], n=reps, seed=_prompt_seed(options.seed, r, 1))
        mm_lows = [low for res in proposals for low in res.lows]
        _count(stats, proposals, reps)
    else:
        mm_lows = [lows[i] for i in range(k) for _ in range(reps)]
    lengths = [min(items[i]["length"], loaded.model.config.max_frames) for i in range(k) for _ in range(reps)]
    seeds = [int(np.random.SeedSequence([options.seed, r, 7, j]).generate_state(1)[0]) for j in range(len(highs))]
    gen = generate_features(loaded, highs, mm_lows, lengths, seeds, options, encoders, device, progress)
    emb = evaluator.encode_motion(gen).reshape(k, reps, -1)
    return multimodality(emb, np.random.default_rng([options.seed, r, 3]), times=min(10, reps))


def failed_gates(result: EvalResult, gates: list[Gate], row: str = "generated") -> list[str]:
    """The gates that hold on ``row``'s means, each as ``"fid = 0.73 > 0.5"``."""
    values = result.rows.get(row) or result.rows["real"]
    failures = []
    for gate in gates:
        if gate.metric not in values:
            raise MotionGPTError(f"{gate.metric} was not computed", hint="multimodality needs --mm-texts")
        value = values[gate.metric][0]
        if gate.holds(value):
            failures.append(f"{gate.metric} = {value:.4g} {gate.op} {gate.threshold:g}")
    return failures
