"""CPU floating-point mode for training and decoding.

Trained recurrent models (the graph VAEs' GRUs and gated sums, GraphPNAS's generator) drive many
activations and gradients into float32's subnormal range (below about 1.2e-38): saturated sigmoid
gates, vanishing messages, Adam's second moments. x86 and ARM CPUs handle subnormal operands in
microcode, tens of times slower than normal ones, so a D-VAE epoch on ENAS-6 slows down two- to
threefold as training proceeds (measured in docs/graph-vaes.md). Flushing subnormals to zero removes
that cost; it changes values only below 1.2e-38, far under every quantity these models use.

``flush_denormals()`` turns flushing on inside a block (or a decorated function) and restores the
previous mode afterwards. The mode belongs to the calling thread: torch's intra-op worker threads
keep theirs, so one thread per process (what the searchers use) gains the most.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

_PROBE = 1e-310  # a float64 subnormal: multiplying it by one gives zero only when flushing is on


def denormals_flushed() -> bool:
    """Whether CPU float operations in this thread flush subnormal numbers to zero."""
    return (torch.tensor([_PROBE], dtype=torch.float64) * 1.0).item() == 0.0


@contextlib.contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[bool]:
    """Flush subnormal floats to zero on the CPU inside the block; yields whether flushing is on
    (False where the CPU cannot, or with ``enabled=False``, which leaves the mode as it is)."""
    if not enabled:
        yield denormals_flushed()
        return
    before = denormals_flushed()
    supported = before or torch.set_flush_denormal(True)
    try:
        yield supported
    finally:
        if supported and not before:
            torch.set_flush_denormal(False)
