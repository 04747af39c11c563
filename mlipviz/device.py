"""The one place that picks a torch device."""

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
