"""Arithmetic precision of the network's forward and backward passes.

``fp32`` is exact to the seed. ``bf16`` runs the convolutions in bfloat16 under
``torch.autocast`` (about 2x the convolution throughput on CPUs with AVX-512 BF16 and on
recent GPUs); ``fp16`` does the same in float16 on CUDA. In every mode the Gram matrices
and the losses are computed in float32 (``objective.gram_matrix`` casts): a float16 Gram
of a 512-channel layer overflows (its entries sum up to M ≈ 10⁵ products), which is the
NaN/inf failure reported for other tools (neural-style-pt #97).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch

from ..errors import NStyleError

PRECISIONS = ("fp32", "bf16", "fp16")
AUTO = "auto"  # bf16 where this device runs it fast, else fp32 (resolve_precision)
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device | str) -> str:
    """Validate ``precision`` for ``device``; a clear error where it cannot run."""
    dev = torch.device(device)
    if precision not in PRECISIONS:
        raise NStyleError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and dev.type != "cuda":
        raise NStyleError("precision fp16 is for CUDA; on a CPU use bf16")
    if precision == "bf16" and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise NStyleError("this GPU has no bfloat16 support; use fp16 or fp32")
    return precision


def bf16_is_fast_on_cpu() -> bool:
    """True where the CPU has native bfloat16 dot products (AVX-512 BF16 / AMX)."""
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe and probe())


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``auto``: bf16 where it is fast (a CPU with native bfloat16 dot products, a CUDA GPU
    with bfloat16), fp32 elsewhere; any other value is checked and returned as it is.

    bf16 is what makes a CPU run fast (the convolutions run 2.4x faster at 512 px with the
    Grams kept in fp32); on a CPU without native bf16 it is emulated and slower than fp32.
    """
    dev = torch.device(device)
    if precision == AUTO:
        if dev.type == "cuda":  # (no GPU at all is the device check's to report)
            return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
        return "bf16" if dev.type == "cpu" and bf16_is_fast_on_cpu() else "fp32"
    check_precision(precision, dev)
    if precision == "bf16" and dev.type == "cpu" and not bf16_is_fast_on_cpu():
        # Measured on an AMD EPYC (AVX2): a 512 px evaluation takes 107 s in bf16, 2.2 s in fp32.
        warnings.warn("this CPU has no native bfloat16: bf16 is emulated, far slower than fp32 "
                      "(use --precision fp32 or auto)", stacklevel=2)
    return precision


@contextlib.contextmanager
def autocast(device: torch.device | str, precision: str = "fp32") -> Iterator[None]:
    """Run the enclosed network calls in ``precision`` (a no-op for fp32)."""
    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=torch.device(device).type, dtype=_DTYPES[precision]):
        yield
