"""Integrity of saved models: SHA-256 checksums, weights that fit their architecture, trusted pickles.

A saved model's ``config.json`` carries, under :data:`mlipviz.keys.MODEL_CHECKSUMS`, the SHA-256 digest of
its weights file (the bytes of ``model.pt``) and of its configuration (the canonical JSON of every other
entry: sorted keys, no whitespace, so re-indenting the file changes nothing but editing a value does).
Loading compares both before it reads any weights, and refuses a mismatch naming the file.

A SchNetPack model written with ``torch.save(model)`` (for example ``best_model`` from ``spktrain``) is a
pickle: reading it runs whatever code the file holds. :func:`load_trusted_pickle` reads one only when the
caller says it trusts the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from .. import keys

__all__ = [
    "ChecksumError",
    "check_state_dict",
    "config_digest",
    "file_digest",
    "guess_representation",
    "load_trusted_pickle",
    "verify_checksums",
]

#: The digest entry of the configuration itself inside :data:`mlipviz.keys.MODEL_CHECKSUMS`.
CONFIG_DIGEST = "config"


class ChecksumError(ValueError):
    """A saved model file does not match the SHA-256 digest recorded for it."""


def file_digest(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def config_digest(config: dict) -> str:
    """SHA-256 hex digest of a configuration dict without its checksum entry (canonical JSON)."""
    body = {k: v for k, v in config.items() if k != keys.MODEL_CHECKSUMS}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def verify_checksums(config: dict, config_path: Path, weights_path: Path) -> None:
    """Compare a loaded ``config.json`` dict and the weights file with the digests the config records.

    Args:
        config: The parsed ``config.json``, with its :data:`mlipviz.keys.MODEL_CHECKSUMS` entry.
        config_path: Where the config came from (named in errors).
        weights_path: The weights file.

    Raises:
        ChecksumError: naming the file whose digest differs, or the config when it records none.
    """
    recorded = config.get(keys.MODEL_CHECKSUMS)
    if not isinstance(recorded, dict) or CONFIG_DIGEST not in recorded or weights_path.name not in recorded:
        raise ChecksumError(
            f"{config_path} records no SHA-256 checksums, so damage to the model cannot be detected. If you trust "
            f"the files, load with trust=True and save the model again with save_model to add them."
        )
    if config_digest(config) != recorded[CONFIG_DIGEST]:
        raise ChecksumError(
            f"{config_path} does not match its recorded SHA-256 checksum: the configuration was edited or damaged "
            f"after the model was saved. Restore it, or retrain; a model's architecture cannot be changed by hand."
        )
    actual = file_digest(weights_path)
    if actual != recorded[weights_path.name]:
        raise ChecksumError(
            f"{weights_path} does not match the SHA-256 checksum recorded in {config_path.name} "
            f"(found {actual[:16]}…, expected {str(recorded[weights_path.name])[:16]}…): the weights are damaged "
            f"or were replaced. Restore the file from its source."
        )


def guess_representation(state: dict) -> str:
    """Which SchNetPack representation a state_dict belongs to, from its parameter names ("unknown" if none)."""
    parts = {k.split(".")[1] for k in state if k.startswith("representation.") and k.count(".") > 1}
    if "so3convs" in parts:
        return "so3net"
    if "mixing" in parts:
        return "painn"
    if "interactions" in parts:
        return "schnet"
    return "unknown"


def _width(state: dict) -> int | None:
    w = state.get("representation.embedding.weight")
    return int(w.shape[1]) if isinstance(w, torch.Tensor) and w.ndim == 2 else None


def check_state_dict(state: dict, model: torch.nn.Module, source: str, architecture: str) -> dict:
    """Check that ``state`` fits ``model`` tensor by tensor, before ``load_state_dict`` sees it.

    Statistics set from a data module (``AddOffsets.mean``) may be stored 0-d where a fresh module has shape
    (1,); such tensors are reshaped.

    Args:
        state: A state_dict (name → tensor).
        model: The freshly built model it should fit.
        source: What the state came from, for error messages (a file name).
        architecture: A short description of ``model``'s architecture, for error messages.

    Returns:
        The state, with compatible shapes adjusted.

    Raises:
        ValueError: listing missing, unexpected and mis-shaped tensors, and what the state looks like.
    """
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{source} is not a state_dict (a dict of tensor names to tensors).")
    expected = model.state_dict()
    state = dict(state)
    shapes = []
    for name, value in state.items():
        if name in expected and value.shape != expected[name].shape:
            if value.numel() == expected[name].numel():
                state[name] = value.reshape(expected[name].shape)
            else:
                shapes.append(f"{name}: {tuple(value.shape)} vs {tuple(expected[name].shape)}")
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected or shapes:
        found = guess_representation(state)
        width = _width(state)
        looks = f"{found}" + (f" with {width} features" if width else "")
        lines = [f"{source} holds weights of another architecture than {architecture} (they look like {looks})."]
        for what, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if items:
                more = f" and {len(items) - 3} more" if len(items) > 3 else ""
                lines.append(f"{len(items)} {what}: {', '.join(items[:3])}{more}.")
        raise ValueError(" ".join(lines))
    return state


def load_trusted_pickle(path: Path) -> torch.nn.Module:
    """Read a whole SchNetPack model written with ``torch.save(model)``. This runs code from the file.

    Only call it for files whose source the user trusts (``load_model(path, trust=True)``).

    Raises:
        ValueError: if the file does not hold a SchNetPack ``NeuralNetworkPotential``.
    """
    import schnetpack as spk

    obj = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(obj, spk.model.NeuralNetworkPotential):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a SchNetPack NeuralNetworkPotential.")
    return obj
