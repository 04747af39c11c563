"""The one place that picks a torch device, and the torch thread count for model calls."""

import os
from contextlib import contextmanager

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into CUDA when a GPU is visible, otherwise the CPU.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a :class:`torch.device`.

    Returns:
        The device to put models and tensors on.

    Raises:
        ValueError: if a CUDA device is requested but none is available, or the name is not a device.
    """
    if isinstance(device, torch.device):
        requested = device
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            requested = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"device={device!r} is not a torch device name; use 'auto', 'cpu' or 'cuda'.") from err
    if requested.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} was requested but no CUDA GPU is visible; use device='auto'.")
    return requested


#: Below this many atoms in one model call, the CPU runs torch on one thread: the per-operation overhead of a small
#: graph dominates and a second thread only adds synchronisation (and, on a busy machine, waits for a free core).
SMALL_CALL_ATOMS = 100


def default_threads(n_atoms: int, device: str | torch.device = "cpu") -> int:
    """The torch thread count for model calls over ``n_atoms`` atoms on ``device``.

    One thread below :data:`SMALL_CALL_ATOMS` atoms on the CPU (and always on a GPU, where the CPU only launches
    kernels); otherwise one per core this process may run on.

    Args:
        n_atoms: Atoms in one model call (all replicas of a batch together).
        device: Where the model runs.
    """
    if torch.device(device).type != "cpu" or n_atoms < SMALL_CALL_ATOMS:
        return 1
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, len(cores))


@contextmanager
def torch_threads(n_threads: int):
    """Run a block with ``torch.set_num_threads(n_threads)`` and restore the previous count afterwards.

    Args:
        n_threads: Intra-op threads (a positive integer).
    """
    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer, got {n_threads!r}.")
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield n_threads
    finally:
        torch.set_num_threads(before)
