"""Last-layer prediction rigidity (LLPR): a single-model energy uncertainty from the readout's features.

The energy head of an mlipviz potential (SchNetPack ``Atomwise``) ends in a linear layer: with ``f_i`` the
input of that layer for atom ``i`` (the last-layer features, (n_hidden,)), the energy is

    E = w · F + b · n_atoms + offsets,        F = Σ_i f_i,

linear in the weights ``w``. Treating ``w`` as the only uncertain parameters of a Gaussian linear model fitted
to the training structures gives, for any structure,

    σ_E² = α² Fᵀ (C + ς I)⁻¹ F,        C = Σ_train F Fᵀ,

and, for one atom's energy, the local prediction rigidity σ_i² = α² f_iᵀ (C + ς I)⁻¹ f_i. The covariance
needs one pass over the training structures and no labels; α and ς are chosen on a validation set by the
Gaussian negative log-likelihood of its energy errors. A prediction costs one model call plus a product
with a (n_hidden, n_hidden) matrix.

LLPR here gives **energy** uncertainties (total and per atom) only. Force uncertainties come from a deep
ensemble of independently trained models.

References:
    Bigi, Chong, Ceriotti, Kellner, Mach. Learn.: Sci. Technol. 5, 045018 (2024), arXiv:2403.02251 (LLPR).
    Chong, Grasselli, Ben Mahmoud, Morrow, Deringer, Ceriotti, J. Chem. Theory Comput. 19, 8020 (2023),
    doi:10.1021/acs.jctc.3c00704 (prediction rigidities, local prediction rigidity).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import schnetpack as spk
import schnetpack.transform as trn
import torch
from ase import Atoms
from schnetpack.interfaces import AtomsConverter

from .. import keys
from ..device import resolve_device
from ..reference.levels import get_level
from .calibration import fit_scale, gaussian_nll
from .chemistry import check_chemistry, embedding_size
from .llpr_files import model_digest, read_llpr, write_llpr
from .model import ModelConfig, energy_offset_per_atom

__all__ = ["LLPR", "LLPRCalibration", "LLPRPrediction", "model_digest"]

#: Regulariser ς before calibration, relative to the mean eigenvalue trace(C)/n_hidden of the covariance.
DEFAULT_RELATIVE_REGULARIZER = 1e-6
#: The ς searched by :meth:`LLPR.calibrate`, relative to trace(C)/n_hidden.
DEFAULT_RELATIVE_GRID = np.logspace(-10, 2, 49)


@dataclass
class LLPRPrediction:
    """Energies and LLPR uncertainties of a list of structures.

    Attributes:
        energy: (n_structures,) model energies, eV.
        energy_uncertainty: (n_structures,) σ_E, eV.
        energies_uncertainty: One (n_atoms,) array of per-atom σ_i (eV) per structure; they do not add up to σ_E
            (the atoms' features are correlated).
    """

    energy: np.ndarray
    energy_uncertainty: np.ndarray
    energies_uncertainty: list[np.ndarray]


@dataclass
class LLPRCalibration:
    """The validation search behind the chosen (α, ς).

    Attributes:
        level: Level of theory of the validation energies.
        n_val: Number of validation structures.
        regularizers: (n_grid,) ς tried.
        alphas: (n_grid,) α fitted (maximum likelihood) at each ς.
        nlls: (n_grid,) validation NLL of the energy errors (nats, errors in eV) at each (α, ς).
        best: Index of the chosen pair.
        nll_uncalibrated: Validation NLL with α = 1 and the default ς.
    """

    level: str
    n_val: int
    regularizers: np.ndarray
    alphas: np.ndarray
    nlls: np.ndarray
    best: int
    nll_uncalibrated: float


def _readout(model: torch.nn.Module) -> torch.nn.Linear:
    """The final linear layer of the model's summed energy head, whose input holds the last-layer features."""
    heads = [m for m in model.modules() if isinstance(m, spk.atomistic.Atomwise) and m.output_key == keys.ENERGY]
    if len(heads) != 1:
        raise ValueError(f"model must have one schnetpack Atomwise head with output {keys.ENERGY!r}; "
                         f"found {len(heads)}.")
    head = heads[0]
    if head.aggregation_mode != "sum":
        raise ValueError(f"The energy head aggregates by {head.aggregation_mode!r}; LLPR needs a sum over atoms.")
    layers = list(head.outnet) if isinstance(head.outnet, torch.nn.Sequential) else [head.outnet]
    last = layers[-1]
    identity = isinstance(getattr(last, "activation", torch.nn.Identity()), torch.nn.Identity)
    if not isinstance(last, torch.nn.Linear) or last.out_features != 1 or not identity:
        raise ValueError("The energy head must end in a linear layer with one output and no activation "
                         f"(found {type(last).__name__}).")
    return last


def _check_images(images, config: ModelConfig, max_z: int | None, name: str) -> list[Atoms]:
    if isinstance(images, Atoms) or not isinstance(images, Sequence):
        raise TypeError(f"{name} must be a list of ase.Atoms, got {type(images).__name__}.")
    if len(images) == 0:
        raise ValueError(f"{name} is empty.")
    for i, a in enumerate(images):
        check_chemistry(a, config.elements, max_z, name=f"{name}[{i}]")
    return list(images)


class LLPR:
    """Last-layer prediction rigidity of a trained SchNetPack potential: energy and per-atom energy σ (eV).

    Build with :meth:`fit` (one pass over the training structures), tune with :meth:`calibrate` on a
    validation set, then :meth:`predict`. :meth:`save` and :meth:`load` keep the covariance in a ``.npz`` file
    tied to the model by checksums. See the module docstring for the equations; forces are not covered.

    Attributes:
        config: The model's :class:`ModelConfig`.
        digests: (configuration, weights) SHA-256 digests of the model (:func:`model_digest`).
        covariance: (n_hidden, n_hidden) C = Σ_train F Fᵀ, in squared feature units.
        n_train: Number of training structures in C.
        alpha: Scale α (eV per unit of sqrt(Fᵀ(C+ςI)⁻¹F)); 1 before calibration.
        regularizer: ς added to the diagonal of C.
        calibration: The :class:`LLPRCalibration` behind α and ς, or None before :meth:`calibrate`.
    """

    def __init__(self, model: torch.nn.Module, config: ModelConfig, covariance: np.ndarray, n_train: int,
                 device: str | torch.device = "cpu"):
        """An LLPR from a known covariance; use :meth:`fit` to compute it, or :meth:`load` to read it.

        Args:
            model: The trained potential (copied onto ``device``; the argument is left untouched).
            config: Its :class:`ModelConfig`.
            covariance: (n_hidden, n_hidden) C = Σ F Fᵀ over the training structures.
            n_train: Number of training structures in ``covariance``.
            device: "auto", "cpu" or "cuda".

        Raises:
            ValueError: for a model without a linear energy readout, or a covariance of the wrong shape, not
                finite, or zero.
        """
        dev = resolve_device(device)
        self.config = config
        self.digests = model_digest(model, config)
        self._model = copy.deepcopy(model).to(dev).eval()  # the caller's model is neither moved nor changed
        self._device = dev
        self._readout = _readout(self._model)
        self._max_z = embedding_size(self._model)
        dtype = next(self._model.parameters()).dtype
        self._converter = AtomsConverter(trn.MatScipyNeighborList(cutoff=config.cutoff), device=dev, dtype=dtype)
        self._set_covariance(covariance, n_train)

    def _set_covariance(self, covariance, n_train: int) -> None:
        """Install C (symmetrised) and reset the calibration: α = 1 and the default ς."""
        c = np.asarray(covariance, dtype=float)
        d = self._readout.in_features
        if c.shape != (d, d) or not np.all(np.isfinite(c)):
            raise ValueError(f"covariance must be a finite ({d}, {d}) matrix, got shape {c.shape}.")
        mean_eigenvalue = float(np.trace(c) / d)
        if not mean_eigenvalue > 0:
            raise ValueError("The last-layer features are all zero on the training structures; LLPR is undefined.")
        self.covariance = 0.5 * (c + c.T)
        self._eigenvalues, self._eigenvectors = np.linalg.eigh(self.covariance)
        self._mean_eigenvalue = mean_eigenvalue
        self.n_train = int(n_train)
        self.alpha = 1.0
        self.regularizer = DEFAULT_RELATIVE_REGULARIZER * mean_eigenvalue
        self.calibration: LLPRCalibration | None = None

    # --- features ---------------------------------------------------------------------------------------------
    def features(self, images, batch_size: int = 64) -> tuple[np.ndarray, list[np.ndarray]]:
        """Model energies and per-atom last-layer features of ``images``.

        Args:
            images: List of ase.Atoms with the model's elements, positions in Å.
            batch_size: Structures per model call.

        Returns:
            ``(energy, features)``: (n_structures,) energies in eV, and one (n_atoms, n_hidden) float64 array
            of features f_i per structure.

        Raises:
            TypeError, ValueError: for a non-list, an empty list, or a structure outside the model's chemistry.
        """
        images = _check_images(images, self.config, self._max_z, "images")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        captured: list[torch.Tensor] = []
        hook = self._readout.register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach()))
        energies, feats = [], []
        try:
            for start in range(0, len(images), batch_size):
                batch = images[start : start + batch_size]
                captured.clear()
                out = self._model(self._converter(batch))
                energies.append(out[keys.ENERGY].detach().cpu().double().numpy().reshape(-1))
                f = captured[-1].cpu().double().numpy()
                feats.extend(np.split(f, np.cumsum([len(a) for a in batch])[:-1]))
        finally:
            hook.remove()
        return np.concatenate(energies), feats

    def readout(self) -> tuple[np.ndarray, float]:
        """The last layer's weights w, (n_hidden,), and bias b (eV per atom)."""
        return (self._readout.weight.detach().cpu().double().numpy().reshape(-1),
                float(self._readout.bias.detach().cpu().double().reshape(-1)[0]))

    def offsets(self, atoms: Atoms) -> float:
        """Energy (eV) that the model's ``AddOffsets`` post-processor adds to the network output of ``atoms``."""
        numbers = torch.as_tensor(atoms.numbers, device=self._device)
        return float(energy_offset_per_atom(self._model, numbers).sum())

    # --- fit and calibrate ------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, model: torch.nn.Module, config: ModelConfig, train_images, device: str = "cpu",
            batch_size: int = 64) -> LLPR:
        """Accumulate C = Σ F Fᵀ over the training structures (no labels needed).

        Args:
            model: A trained potential built by :func:`mlipviz.potential.build_model` (not modified; LLPR keeps a
                copy on ``device``).
            config: Its :class:`ModelConfig` (cutoff and elements).
            train_images: The structures the model was trained on, list of ase.Atoms.
            device: "auto", "cpu" or "cuda".
            batch_size: Structures per model call.

        Returns:
            An uncalibrated :class:`LLPR` (α = 1, ς = 1e-6 · trace(C)/n_hidden).

        Raises:
            ValueError: for a model whose energy head does not end in a linear layer, or bad structures.
        """
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}.")
        llpr = cls(model, config, np.eye(_readout(model).in_features), 0, device)
        _, feats = llpr.features(train_images, batch_size)
        big_f = np.stack([f.sum(axis=0) for f in feats])
        llpr._set_covariance(big_f.T @ big_f, len(feats))
        return llpr

    def _raw_variances(self, vectors: np.ndarray, regularizer: np.ndarray) -> np.ndarray:
        """xᵀ(C + ςI)⁻¹x for rows x of ``vectors`` (m, d) and each ς: shape (len(ς), m)."""
        proj = (vectors @ self._eigenvectors) ** 2
        return (proj[None, :, :] / (self._eigenvalues[None, None, :] + regularizer[:, None, None])).sum(-1)

    def calibrate(self, val_images, level: str, regularizers=None) -> LLPR:
        """Choose ς on a grid and α by maximum likelihood at each ς; keep the pair with the lowest validation NLL.

        Args:
            val_images: Validation structures (not used in training) carrying energies at ``level`` in
                ``atoms.info[keys.energy_key(slug)]`` (eV).
            level: Level of theory of those energies, e.g. "CCSD(T)/cc-pVDZ".
            regularizers: The ς to try; default trace(C)/n_hidden · 10^(−10 … 2) (49 values).

        Returns:
            ``self``, with ``alpha``, ``regularizer`` and ``calibration`` set.

        Raises:
            ValueError: for fewer than 2 validation structures, a structure without the energy, a bad grid, or
                errors that are all zero.
        """
        key = keys.energy_key(get_level(level).slug)
        val_images = _check_images(val_images, self.config, self._max_z, "val_images")
        if len(val_images) < 2:
            raise ValueError(f"val_images needs at least 2 structures to calibrate, got {len(val_images)}.")
        missing = [i for i, a in enumerate(val_images) if key not in a.info]
        if missing:
            raise ValueError(f"val_images[{missing[0]}] has no {key!r} energy ({len(missing)} structure(s) lack it).")
        if regularizers is None:
            grid = DEFAULT_RELATIVE_GRID * self._mean_eigenvalue
        else:
            grid = np.asarray(regularizers, dtype=float).reshape(-1)
            if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
                raise ValueError("regularizers must be a non-empty list of positive finite numbers.")
        energy, feats = self.features(val_images)
        errors = energy - np.array([a.info[key] for a in val_images], dtype=float)
        if not np.any(errors):
            raise ValueError("The validation energy errors are all zero; there is nothing to calibrate on.")
        big_f = np.stack([f.sum(axis=0) for f in feats])
        raw = np.sqrt(self._raw_variances(big_f, np.append(grid, self.regularizer)))
        uncalibrated = gaussian_nll(errors, self.alpha * raw[-1], "LLPR energy uncertainty")
        alphas = np.array([fit_scale(errors, r, "LLPR energy uncertainty") for r in raw[:-1]])
        nlls = np.array([gaussian_nll(errors, a * r, "LLPR energy uncertainty") for a, r in zip(alphas, raw[:-1])])
        best = int(np.argmin(nlls))
        self.alpha, self.regularizer = float(alphas[best]), float(grid[best])
        self.calibration = LLPRCalibration(get_level(level).name, len(val_images), grid, alphas, nlls, best,
                                           float(uncalibrated))
        return self

    # --- predict ----------------------------------------------------------------------------------------------
    def inverse(self) -> np.ndarray:
        """(C + ςI)⁻¹ at the current ς, (n_hidden, n_hidden)."""
        v, lam = self._eigenvectors, self._eigenvalues
        return (v / (lam + self.regularizer)) @ v.T

    def predict(self, images, batch_size: int = 64) -> LLPRPrediction:
        """Energies, σ_E and per-atom σ_i (eV) of ``images``.

        Args:
            images: List of ase.Atoms with the model's elements, positions in Å.
            batch_size: Structures per model call.

        Returns:
            An :class:`LLPRPrediction`.

        Raises:
            TypeError, ValueError: for a non-list, an empty list, or a structure outside the model's chemistry.
        """
        energy, feats = self.features(images, batch_size)
        inv = self.inverse()
        big_f = np.stack([f.sum(axis=0) for f in feats])
        var_e = np.einsum("md,de,me->m", big_f, inv, big_f)
        per_atom = [self.alpha * np.sqrt(np.maximum(np.einsum("id,de,ie->i", f, inv, f), 0.0)) for f in feats]
        return LLPRPrediction(energy, self.alpha * np.sqrt(np.maximum(var_e, 0.0)), per_atom)

    # --- files ------------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the covariance, α, ς and the model's checksums to an ``.npz`` file (no pickles).

        See :mod:`mlipviz.potential.llpr_files` for the fields.

        Returns:
            The path written (``.npz`` is appended when missing).
        """
        return write_llpr(self, path)

    @classmethod
    def load(cls, path: str | Path, model: torch.nn.Module, config: ModelConfig, device: str = "cpu") -> LLPR:
        """Read an :meth:`save`-d LLPR for ``model``, refusing one computed for another model.

        Raises:
            FileNotFoundError: when ``path`` does not exist.
            ValueError: for a file that is not an LLPR file of this format, or whose checksums differ from
                ``model``'s configuration or weights.
        """
        fields = read_llpr(path, model, config)
        llpr = cls(model, config, fields["covariance"], fields["n_train"], device)
        llpr.alpha, llpr.regularizer = fields["alpha"], fields["regularizer"]
        if fields["calibration"] is not None:
            llpr.calibration = LLPRCalibration(**fields["calibration"])
        return llpr
