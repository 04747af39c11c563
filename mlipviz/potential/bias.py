"""The constant energy bias of a trained potential: measure it, and refit the energy offset that removes it.

Forces are gradients, so a constant added to every energy leaves the force loss unchanged; only the energy
term of the loss (weight ρ, 0.05 by default) sees it. The constant is carried jointly by every weight of the
network, whose updates are driven by the forces, so it wanders during training (by tens of meV from epoch to
epoch on the embedded water data) and freezes wherever it happens to be when the learning rate decays. The
network's per-atom energy offset (``AddOffsets``), fitted once before training as the mean energy per atom,
then no longer matches the network: every prediction is off by the same amount.

:func:`refit_energy_offset` fixes this after training. It shifts the per-atom offset by the least-squares
constant of the training-split residuals,

    δ = Σ_i n_i (E_i − Ê_i) / Σ_i n_i²,

with ``n_i`` atoms, reference energy ``E_i`` and prediction ``Ê_i`` of structure ``i``. Forces do not change,
the training energy MSE can only fall, and the mean signed training error becomes zero for a dataset of one
composition. Validation and test structures are not used.
"""

from __future__ import annotations

import numpy as np
import schnetpack.transform as trn
import torch
import torchmetrics
from schnetpack import properties as spk_properties

from .. import keys

__all__ = ["MeanSignedError", "error_summary", "offset_shift", "refit_energy_offset", "split_errors"]


class MeanSignedError(torchmetrics.Metric):
    """Mean of (prediction − target) over all elements seen, accumulated in float64: the bias beside an MAE."""

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of predictions and targets (same shape, any unit)."""
        if preds.shape != target.shape:
            raise ValueError(f"preds has shape {tuple(preds.shape)} but target has {tuple(target.shape)}.")
        self.total += (preds.detach().double() - target.detach().double()).sum()
        self.count += preds.numel()

    def compute(self) -> torch.Tensor:
        """The mean signed error; NaN before any update."""
        return self.total / self.count if self.count > 0 else torch.tensor(float("nan"), dtype=torch.float64)


def _offsets(model: torch.nn.Module) -> trn.AddOffsets:
    for module in model.modules():
        if isinstance(module, trn.AddOffsets) and module.add_mean:
            return module
    raise ValueError("The model has no AddOffsets post-processor with add_mean=True; there is no offset to refit.")


def _residuals(model: torch.nn.Module, loader, forces: bool):
    """Per batch: atoms per structure, energy errors (network − target, eV), force errors (eV/Å) or None.

    Targets come from the loader after its ``RemoveOffsets``; the network runs without post-processing, so
    both sides lack the same training-set mean.
    """
    device = next(model.parameters()).device
    pp = model.do_postprocessing
    model.do_postprocessing = False
    try:
        with torch.enable_grad():
            for batch in loader:
                batch = {k: v.to(device) for k, v in batch.items()}
                target_e = batch[keys.ENERGY].double()
                target_f = batch[keys.FORCES].double() if forces else None
                out = model(batch)
                n = batch[spk_properties.n_atoms].double()
                de = out[keys.ENERGY].detach().double() - target_e
                df = out[keys.FORCES].detach().double() - target_f if forces else None
                yield n, de, df
    finally:
        model.do_postprocessing = pp


def offset_shift(n_atoms, energy_errors) -> float:
    """The per-atom shift δ (eV/atom) that minimises Σ_i (e_i + n_i δ)² for errors e_i = prediction − reference.

    Args:
        n_atoms: Atoms per structure, shape (n,).
        energy_errors: Energy errors, eV, shape (n,).

    Returns:
        δ = −Σ n_i e_i / Σ n_i²; adding it to the per-atom offset removes the least-squares constant.
    """
    n, e = np.asarray(n_atoms, dtype=float).reshape(-1), np.asarray(energy_errors, dtype=float).reshape(-1)
    if n.shape != e.shape or not len(n):
        raise ValueError(f"n_atoms and energy_errors must be equally long and non-empty, got {n.shape} and {e.shape}.")
    return float(-(n * e).sum() / (n * n).sum())


def refit_energy_offset(model: torch.nn.Module, train_loader) -> float:
    """Shift the model's per-atom energy offset by the least-squares constant of its training residuals.

    Args:
        model: A trained SchNetPack model with an ``AddOffsets(add_mean=True)`` post-processor (as made by
            :func:`mlipviz.potential.build_model`); modified in place.
        train_loader: The training split, with the same ``RemoveOffsets`` transform used in training.

    Returns:
        The shift δ, eV per atom, now included in the model's offset.
    """
    offsets = _offsets(model)
    n_all, e_all = [], []
    for n, de, _ in _residuals(model, train_loader, forces=False):
        n_all.append(n.cpu().numpy())
        e_all.append(de.cpu().numpy())
    if not n_all:
        raise ValueError("The training loader holds no structures; cannot refit the energy offset.")
    delta = offset_shift(np.concatenate(n_all), np.concatenate(e_all))
    offsets.mean = offsets.mean.detach().double().reshape(1) + delta
    return delta


def error_summary(energy_errors, force_errors) -> dict[str, float]:
    """MAE and mean signed error of energies and force components.

    Args:
        energy_errors: Prediction − reference energies, eV, one per structure.
        force_errors: Prediction − reference force components, eV/Å, any shape.

    Returns:
        ``{ERR_N, ERR_ENERGY_MAE, ERR_ENERGY_SIGNED (eV), ERR_FORCES_MAE, ERR_FORCES_SIGNED (eV/Å)}``, keys
        from :mod:`mlipviz.keys`.
    """
    e, f = np.asarray(energy_errors, dtype=float).reshape(-1), np.asarray(force_errors, dtype=float).reshape(-1)
    if not len(e) or not len(f):
        raise ValueError("No errors to summarise: the split holds no structures.")
    return {
        keys.ERR_N: len(e),
        keys.ERR_ENERGY_MAE: float(np.abs(e).mean()),
        keys.ERR_ENERGY_SIGNED: float(e.mean()),
        keys.ERR_FORCES_MAE: float(np.abs(f).mean()),
        keys.ERR_FORCES_SIGNED: float(f.mean()),
    }


def split_errors(model: torch.nn.Module, loader, shift: float = 0.0) -> dict[str, float]:
    """Energy and force MAE and mean signed error of a model on one split (see :func:`error_summary`).

    Args:
        model: The model (eval mode; post-processing is switched off while measuring).
        loader: The split, with the training ``RemoveOffsets`` transform.
        shift: Per-atom offset refit since training (δ from :func:`refit_energy_offset`), eV/atom; it is
            added to the network's energies, so the errors are those of the final model.
    """
    e_all, f_all = [], []
    for n, de, df in _residuals(model, loader, forces=True):
        e_all.append((de + shift * n).cpu().numpy())
        f_all.append(df.cpu().numpy().reshape(-1))
    if not e_all:
        raise ValueError("The loader holds no structures.")
    return error_summary(np.concatenate(e_all), np.concatenate(f_all))
