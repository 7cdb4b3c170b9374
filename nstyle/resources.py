"""The resource guard: what one run may allocate, checked before it allocates.

An absurd option or a hostile file (``--branches 3:1000000``, a PNG that inflates to
13 000 x 13 000, a ``.npy`` header that claims 10¹² samples, ``--hop 1`` on a long
clip) would otherwise reach the allocator and end in a raw out-of-memory traceback, or
take the machine down with it. Each reader checks what it is about to allocate against
the limits here, and the pipeline estimates the network's activations on PyTorch's
``meta`` device (shapes only, no memory) before the first step; a run over the limit is
refused with the figure and the option that changes it.

Defaults: ``max_memory`` is 80 % of the machine's physical memory (the rest is for the
system and for what the estimate leaves out); ``max_pixels`` is 100 MP per input image,
about 20 times a 24 MP photo and far beyond any style transfer's working size.
Both are settings (``--max-memory GIB``, ``--max-pixels N``) and can be raised.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from torch.func import functional_call

from .errors import NStyleError

DEFAULT_MEMORY_SHARE = 0.8
DEFAULT_MAX_PIXELS = 100_000_000
GIB = 2**30

# Backward keeps every activation of the forward pass and makes a gradient of the same
# size for each while it runs back through the layers: about twice the forward's bytes.
BACKWARD_FACTOR = 2


def physical_memory() -> int:
    """Bytes of RAM of this machine (16 GiB where the OS cannot say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * GIB


@dataclass(frozen=True)
class Limits:
    """What one run may use: bytes of memory, and pixels of one decoded input image."""

    memory: int
    pixels: int = DEFAULT_MAX_PIXELS

    @classmethod
    def of(cls, max_memory_gib: float | None = None, max_pixels: int | None = None) -> Limits:
        memory = int(DEFAULT_MEMORY_SHARE * physical_memory()) if max_memory_gib is None else int(max_memory_gib * GIB)
        return cls(memory, DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels))


_LIMITS: ContextVar[Limits | None] = ContextVar("nstyle_limits", default=None)


def current() -> Limits:
    """The limits of the run in progress (the defaults outside one)."""
    return _LIMITS.get() or Limits.of()


@contextmanager
def limits(max_memory_gib: float | None = None, max_pixels: int | None = None) -> Iterator[Limits]:
    """Within the block, readers and the pipeline check against these limits."""
    token = _LIMITS.set(Limits.of(max_memory_gib, max_pixels))
    try:
        yield _LIMITS.get()  # type: ignore[misc]
    finally:
        _LIMITS.reset(token)


def check_bytes(what: str, need: int, fix: str) -> None:
    """Refuse ``need`` bytes for ``what`` if over the memory limit; ``fix`` says which
    option would bring it down."""
    limit = current().memory
    if need > limit:
        raise NStyleError(
            f"{what} would need about {need / GIB:,.1f} GiB, over the limit of {limit / GIB:,.1f} GiB; "
            f"{fix}, or raise --max-memory"
        )


def check_elements(what: str, shape: Sequence[int], fix: str, bytes_per: int = 4, copies: int = 3) -> None:
    """``check_bytes`` for ``copies`` float arrays of ``shape`` (a reader's working copies)."""
    n = 1
    for s in shape:
        n *= max(0, int(s))
    check_bytes(what, n * bytes_per * copies, fix)


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_allocator_tuned = False


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for the next evaluation instead of handing it
    back to the OS; True where it was set (Linux with glibc), once per process.

    Every evaluation allocates and frees the same large activations. By default glibc
    serves each block above 32 MiB with a fresh mmap and unmaps it when freed, so every
    evaluation page-faults its whole working set in again: that zero-filling was about a
    third of a 512 px bf16 evaluation (0.37 -> 0.25 s; fp32 1.04 -> 0.89 s on this 2-core
    CPU). Served from the heap and not trimmed, the pages stay mapped. The cost: the
    process keeps its peak resident size until it exits (``NSTYLE_KEEP_MALLOC=1`` opts out).
    """
    global _allocator_tuned
    if _allocator_tuned or os.environ.get("NSTYLE_KEEP_MALLOC") or not sys.platform.startswith("linux"):
        return _allocator_tuned
    try:
        libc = ctypes.CDLL("libc.so.6")
        done = all(libc.mallopt(k, v) == 1 for k, v in (
            (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 256 * 2**20)))
    except (OSError, AttributeError):  # not glibc (musl, another libc): leave malloc as it is
        return False
    _allocator_tuned = done
    return done


def activation_bytes(model: torch.nn.Module, shape: Sequence[int], layers: Sequence[str]) -> int | None:
    """Bytes of every intermediate output of ``model(x, layers)`` for an input of ``shape``,
    measured on the ``meta`` device (nothing is computed or allocated); None if the model
    cannot run there."""
    total = 0

    def count(module: torch.nn.Module, inputs: object, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    out = on_meta(model, shape, layers, count)
    if out is None:
        return None
    # outputs of functional ops (a ReLU applied with torch.relu)
    return total + sum(v.numel() * v.element_size() for v in out.values() if isinstance(v, torch.Tensor))


def on_meta(
    model: torch.nn.Module, shape: Sequence[int], layers: Sequence[str],
    hook: Callable[[torch.nn.Module, object, object], None] | None = None,
) -> dict[str, torch.Tensor] | None:
    """``model(x, layers)`` for an input of ``shape`` on the ``meta`` device: activations that
    have shapes but no values (nothing is computed or allocated), ``hook`` called on every
    leaf module's output; None if the model cannot run there."""
    # The model's own weights are swapped for meta stand-ins for the one call: no copy.
    ghosts = {k: torch.empty_like(v, device="meta") for k, v in [*model.named_parameters(), *model.named_buffers()]}
    hooks = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())] if hook else []
    try:
        with torch.no_grad():
            out = functional_call(model, ghosts, (torch.empty(*shape, device="meta"), list(layers)))
    except Exception:  # noqa: BLE001 -- an op without a meta kernel: no estimate, no refusal
        return None
    finally:
        for h in hooks:
            h.remove()
    return out if isinstance(out, dict) else None


def parameter_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())
