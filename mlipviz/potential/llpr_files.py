"""The LLPR file: covariance, calibration and the model's checksums in one ``.npz`` file, without pickles.

An LLPR (:class:`mlipviz.potential.LLPR`) belongs to one model: its covariance is accumulated from that model's
last-layer features. The file records the SHA-256 digests of the model's configuration and weights
(:func:`model_digest`), and reading it for a model with other digests is refused, so an LLPR cannot silently be
applied to a retrained or replaced model. The file is written to a temporary name and then renamed: an
interrupted save leaves no file that loads.

Fields (numpy arrays; format :data:`FILE_FORMAT`): ``format``, ``covariance`` (n_hidden, n_hidden), ``n_train``,
``alpha``, ``regularizer``, ``config_digest``, ``weights_digest``, and the validation search ``level`` ("" before
calibration), ``n_val``, ``grid``, ``grid_alpha``, ``grid_nll``, ``best``, ``nll_uncalibrated``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .files import config_digest
from .model import ModelConfig

__all__ = ["FILE_FORMAT", "model_digest", "read_llpr", "write_llpr"]

#: Version of the ``.npz`` layout written by :func:`write_llpr`.
FILE_FORMAT = 1
#: The fields every LLPR file has; the calibration fields may be empty.
_NEEDED = {"format", "covariance", "n_train", "alpha", "regularizer", "config_digest", "weights_digest"}


def model_digest(model: torch.nn.Module, config: ModelConfig) -> tuple[str, str]:
    """SHA-256 digests identifying a model: of its configuration (as :func:`save_model` records it) and weights.

    Args:
        model: The SchNetPack potential.
        config: Its :class:`ModelConfig`.

    Returns:
        ``(config_digest, weights_digest)``; the weights digest covers every floating-point tensor of the
        state_dict, taken in float64, so it does not change when a float32 model is moved between devices.
    """
    data = json.loads(json.dumps(asdict(config), default=str))
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        if torch.is_floating_point(value):
            h.update(name.encode())
            h.update(value.detach().cpu().double().contiguous().numpy().tobytes())
    return config_digest(data), h.hexdigest()


def write_llpr(llpr, path: str | Path) -> Path:
    """Write an LLPR's covariance, α, ς, validation search and model checksums to an ``.npz`` file (no pickles).

    Args:
        llpr: The :class:`~mlipviz.potential.LLPR` (its ``covariance``, ``n_train``, ``alpha``, ``regularizer``,
            ``digests`` and ``calibration`` are written).
        path: Where to write; ``.npz`` is appended when missing. Missing parent directories are created.

    Returns:
        The path written.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    cal = llpr.calibration
    arrays = dict(
        format=np.array(FILE_FORMAT), covariance=llpr.covariance, n_train=np.array(llpr.n_train),
        alpha=np.array(llpr.alpha), regularizer=np.array(llpr.regularizer),
        config_digest=np.array(llpr.digests[0]), weights_digest=np.array(llpr.digests[1]),
        level=np.array(cal.level if cal else ""), n_val=np.array(cal.n_val if cal else 0),
        grid=cal.regularizers if cal else np.zeros(0), grid_alpha=cal.alphas if cal else np.zeros(0),
        grid_nll=cal.nlls if cal else np.zeros(0), best=np.array(cal.best if cal else -1),
        nll_uncalibrated=np.array(cal.nll_uncalibrated if cal else np.nan),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


def read_llpr(path: str | Path, model: torch.nn.Module, config: ModelConfig) -> dict:
    """Read a file written by :func:`write_llpr` for ``model``, refusing one computed for another model.

    Args:
        path: The ``.npz`` file.
        model: The potential the LLPR is meant for.
        config: Its :class:`ModelConfig`.

    Returns:
        ``covariance`` ((n_hidden, n_hidden) array), ``n_train``, ``alpha``, ``regularizer``, and ``calibration``:
        None before calibration, else the keyword arguments of :class:`~mlipviz.potential.LLPRCalibration`
        (``level``, ``n_val``, ``regularizers``, ``alphas``, ``nlls``, ``best``, ``nll_uncalibrated``).

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: for a file that is not an LLPR file of this format, or whose checksums differ from
            ``model``'s configuration or weights.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {k: data[k] for k in data.files}
    except (ValueError, OSError) as err:
        raise ValueError(f"{path} is not a readable .npz file: {err}") from err
    if not _NEEDED <= set(fields) or int(fields["format"]) != FILE_FORMAT:
        raise ValueError(f"{path} is not an LLPR file of format {FILE_FORMAT} (missing "
                         f"{sorted(_NEEDED - set(fields))}).")
    cfg, weights = model_digest(model, config)
    if str(fields["config_digest"]) != cfg:
        raise ValueError(f"{path} was computed for a model with another configuration; it does not belong to "
                         f"this model ({config.describe()}). Fit LLPR again for it.")
    if str(fields["weights_digest"]) != weights:
        raise ValueError(f"{path} was computed for a model with other weights; it does not belong to this model "
                         f"(retrained or replaced). Fit LLPR again for it.")
    calibration = None
    if str(fields["level"]):
        calibration = dict(level=str(fields["level"]), n_val=int(fields["n_val"]), regularizers=fields["grid"],
                           alphas=fields["grid_alpha"], nlls=fields["grid_nll"], best=int(fields["best"]),
                           nll_uncalibrated=float(fields["nll_uncalibrated"]))
    return dict(covariance=fields["covariance"], n_train=int(fields["n_train"]), alpha=float(fields["alpha"]),
                regularizer=float(fields["regularizer"]), calibration=calibration)
