"""The arithmetic the denoiser samples with: fp32, bf16 (autocast) or int8 (dynamic quantisation of its linears).

``auto`` picks, from the device, the CPU's own feature flags (never its name) and the denoiser's width, only what
``benchmarks/bench_precision.py`` measured to be faster there while keeping the embedded model's FID within the 95%
interval of fp32 (docs/generate.md):

- a CPU with AMX-BF16 tiles (Intel Sapphire Rapids and later), for a denoiser at least MDM's width (512) or a batch
  of at least 16 motions: ``bf16``. Measured per 196-frame motion against fp32 at batch 1: 2.8x at MDM size, and at
  the embedded model's size 2.5x at batch 16, but 0.77x at batch 1 (the matrices are too small for the tiles to pay
  for the casts);
- a CPU with AVX-512 BF16 instructions and no AMX (AMD Zen 4, Intel Cooper Lake): ``bf16`` at every width and
  batch. Measured on an AMD EPYC at batch 1: 1.52x at the embedded size, 2.2x at MDM size (int8: 1.07x and 1.49x);
  at batch 16, 2.2x at the embedded size;
- everything else: ``fp32``. AVX2-only CPUs, CUDA and MPS have not been measured; int8 was never the fastest.

bf16 runs the forward under :func:`torch.autocast` and returns float32, so the scheduler's arithmetic stays fp32.
int8 is PyTorch's dynamic quantisation (CPU only): weights of every ``nn.Linear`` stored as int8, activations
quantised per batch; the attention projections inside ``nn.MultiheadAttention`` stay fp32.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path

import torch

from ..errors import InvalidValueError

PRECISIONS = ("auto", "fp32", "bf16", "int8")
_QUANTISED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo`` on Linux; empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16_cpu(flags: frozenset[str] | None = None) -> str | None:
    """How the CPU multiplies bf16 matrices in hardware: ``"amx"`` (AMX-BF16 tiles), ``"avx512"`` (AVX-512 BF16 dot
    products, no AMX) or None."""
    flags = cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "amx"
    return "avx512" if "avx512_bf16" in flags else None


BF16_MIN_WIDTH = 512  # measured on AMX: bf16 pays at MDM's width at batch 1, not at the embedded model's 256
BF16_MIN_BATCH = 16  # measured on AMX: at the embedded width bf16 pays at batch 16 (2.8x over its batch 1)


def resolve_precision(requested: str, device: str | torch.device = "cpu", flags: frozenset[str] | None = None,
                      width: int | None = None, batch: int | None = None) -> str:  # fmt: skip
    """``fp32``, ``bf16`` or ``int8`` for ``requested`` (``auto`` per the module's measured rules) on ``device``, for
    a denoiser ``width`` wide sampling ``batch`` motions per forward (None: large enough)."""
    if requested not in PRECISIONS:
        raise InvalidValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    kind = torch.device(device).type
    if requested == "int8" and kind != "cpu":
        raise InvalidValueError(f"int8 sampling runs on the CPU only, not {kind}",
                                hint="use --precision bf16 or fp32 on a GPU")  # fmt: skip
    if requested != "auto":
        return requested
    native = native_bf16_cpu(flags) if kind == "cpu" else None
    if native == "avx512":
        return "bf16"
    wide = width is None or width >= BF16_MIN_WIDTH or (batch is not None and batch >= BF16_MIN_BATCH)
    return "bf16" if native == "amx" and wide else "fp32"


@contextlib.contextmanager
def forward_context(precision: str, device: str | torch.device = "cpu") -> Iterator[None]:
    """Run the denoiser's forward passes in ``precision`` (a resolved one)."""
    if precision == "bf16":
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            yield
    elif precision == "int8":  # the encoder layers' fused fast path reads .weight, which quantised linears lack
        old = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            yield
        finally:
            torch.backends.mha.set_fastpath_enabled(old)
    else:
        yield


def model_for(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """``model`` itself, or for ``int8`` its dynamically quantised copy (made once per model object)."""
    if precision != "int8":
        return model
    quantised = _QUANTISED.get(model)
    if quantised is None:
        with warnings.catch_warnings():  # torch's notice that eager quantisation is moving to torchao
            warnings.simplefilter("ignore")
            quantised = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).cpu().eval(), {torch.nn.Linear},
                                                               dtype=torch.qint8)  # fmt: skip
        _QUANTISED[model] = quantised
    return quantised
