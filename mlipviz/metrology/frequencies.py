"""Harmonic frequencies of a potential against a reference level, mode by mode.

Each reference mode is paired with one model mode and the error is model − reference, in cm⁻¹. Two ways to
pair them:

* ``"order"``: the k-th lowest model frequency with the k-th lowest reference frequency. Needs frequencies
  only (a published list will do), but it hides a swap: if a potential puts the symmetric stretch above the
  antisymmetric one, both errors look small while both modes are wrong.
* ``"overlap"`` (default when both sides have eigenvectors): the model's minimum is rotated onto the
  reference one (mass-weighted Kabsch), and the pairing maximises the summed overlaps |⟨e_model|e_ref⟩| of the
  mass-weighted eigenvectors (Hungarian assignment). Modes are paired by the motion they describe, so a swap
  shows as two large errors. The overlap of each pair is reported: well below 1 means the model mixes modes.

References:
    Wilson, Decius, Cross, Molecular Vibrations (Dover, 1980) (normal modes).
    Kabsch, Acta Cryst. A 32, 922 (1976), doi:10.1107/S0567739476001873 (optimal rotation).
    Kuhn, Naval Res. Logist. Q. 2, 83 (1955), doi:10.1002/nav.3800020109 (assignment problem).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..reference.sampling.normal_modes import NormalModes

__all__ = ["FrequencyComparison", "compare_frequencies", "frequency_comparison", "plot_frequency_comparison"]

MATCHES = ("overlap", "order")


@dataclass
class FrequencyComparison:
    """Harmonic frequencies of a model against a reference, one row per reference mode.

    Attributes:
        reference_cm: (n_modes,) reference wavenumbers, ascending, cm⁻¹.
        model_cm: (n_modes,) the model mode paired with each, cm⁻¹.
        model_index: (n_modes,) index of that mode among the model's (ascending) modes.
        overlap: (n_modes,) |⟨e_model|e_ref⟩| of each pair (NaN when matched by order without vectors).
        matching: "overlap" or "order".
        threshold_cm: Errors larger than this are flagged, cm⁻¹.
    """

    reference_cm: np.ndarray
    model_cm: np.ndarray
    model_index: np.ndarray
    overlap: np.ndarray
    matching: str
    threshold_cm: float

    @property
    def error_cm(self) -> np.ndarray:
        """(n_modes,) model − reference, cm⁻¹."""
        return self.model_cm - self.reference_cm

    @property
    def flagged(self) -> np.ndarray:
        """(n_modes,) True where |error| exceeds ``threshold_cm``."""
        return np.abs(self.error_cm) > self.threshold_cm

    @property
    def mae_cm(self) -> float:
        return float(np.mean(np.abs(self.error_cm)))

    def rows(self) -> list[dict]:
        """One dict per mode (for a DataFrame)."""
        return [{"mode": k + 1, "reference_cm": r, "model_cm": m, "error_cm": m - r, "overlap": o, "flagged": bool(f)}
                for k, (r, m, o, f) in enumerate(zip(self.reference_cm, self.model_cm, self.overlap, self.flagged))]

    def table(self) -> str:
        """A plain-text table; flagged modes are marked with the size of their error."""
        lines = [f"{'mode':>4}  {'reference cm⁻¹':>14}  {'model cm⁻¹':>10}  {'error cm⁻¹':>10}  {'overlap':>7}"]
        for row in self.rows():
            mark = f"  <-- off by {row['error_cm']:+.0f} cm⁻¹ (> {self.threshold_cm:g})" if row["flagged"] else ""
            lines.append(f"{row['mode']:>4}  {row['reference_cm']:14.1f}  {row['model_cm']:10.1f}  "
                         f"{row['error_cm']:+10.1f}  {row['overlap']:7.3f}{mark}")
        lines.append(f"MAE {self.mae_cm:.1f} cm⁻¹, modes paired by {self.matching}")
        return "\n".join(lines)


def _aligned_modes(model: NormalModes, reference: NormalModes) -> np.ndarray:
    """The model's mass-weighted mode vectors, rotated as its minimum is rotated onto the reference one."""
    from scipy.spatial.transform import Rotation

    m = reference.atoms.get_masses()
    a = reference.atoms.positions - reference.atoms.get_center_of_mass()
    b = model.atoms.positions - model.atoms.get_center_of_mass()
    rot, _ = Rotation.align_vectors(a, b, weights=m)  # rot maps model coordinates onto the reference ones
    return np.einsum("ab,kib->kia", rot.as_matrix(), model.modes)


def compare_frequencies(model: NormalModes | np.ndarray, reference: NormalModes | np.ndarray,
                        match: str | None = None, threshold_cm: float = 50.0) -> FrequencyComparison:
    """Pair model and reference modes and give each error (model − reference) in cm⁻¹.

    Args:
        model: The model's :class:`NormalModes` (e.g. :func:`mlipviz.potential.model_normal_modes`) or its
            wavenumbers, cm⁻¹.
        reference: The reference :class:`NormalModes` (e.g. :func:`mlipviz.reference.reference_normal_modes`) or
            published wavenumbers, cm⁻¹.
        match: "overlap" or "order" (see the module docstring); default "overlap" when both sides carry
            eigenvectors, else "order".
        threshold_cm: Flag modes whose |error| exceeds this, cm⁻¹.

    Raises:
        ValueError: for unequal numbers of modes, different molecules, or "overlap" without eigenvectors.
    """
    both_modes = isinstance(model, NormalModes) and isinstance(reference, NormalModes)
    match = match or ("overlap" if both_modes else "order")
    if match not in MATCHES:
        raise ValueError(f"match={match!r} is not one of {MATCHES}.")
    f_model = np.asarray(model.frequencies_cm if isinstance(model, NormalModes) else model, dtype=float).ravel()
    f_ref = np.asarray(reference.frequencies_cm if isinstance(reference, NormalModes) else reference, float).ravel()
    if len(f_model) != len(f_ref):
        raise ValueError(f"The model has {len(f_model)} modes and the reference {len(f_ref)}: not the same molecule.")
    if not (np.isfinite(threshold_cm) and threshold_cm > 0):
        raise ValueError(f"threshold_cm must be a positive wavenumber, got {threshold_cm!r}.")
    ref_order, model_order = np.argsort(f_ref), np.argsort(f_model)
    overlap = np.full(len(f_ref), np.nan)
    if match == "order":
        index = np.arange(len(f_ref))
        if both_modes and np.array_equal(model.atoms.numbers, reference.atoms.numbers):
            s = np.abs(np.einsum("kia,kia->k", _aligned_modes(model, reference)[model_order],
                                 reference.modes[ref_order]))
            overlap = s
    else:
        if not both_modes:
            raise ValueError("match='overlap' needs NormalModes (with eigenvectors) on both sides.")
        if not np.array_equal(model.atoms.numbers, reference.atoms.numbers):
            raise ValueError("match='overlap' needs the same atoms in the same order in model and reference.")
        from scipy.optimize import linear_sum_assignment

        vm = _aligned_modes(model, reference)[model_order].reshape(len(f_model), -1)
        vr = reference.modes[ref_order].reshape(len(f_ref), -1)
        s = np.abs(vr @ vm.T)  # s[r, m]
        rows, index = linear_sum_assignment(-s)
        overlap = s[rows, index]
    return FrequencyComparison(f_ref[ref_order], f_model[model_order][index], index, overlap, match,
                               float(threshold_cm))


def frequency_comparison(model_or_calculator, atoms: Atoms, level: str, match: str = "overlap",
                         threshold_cm: float = 50.0, fmax: float = 1e-3, device: str = "auto",
                         reference: NormalModes | None = None) -> FrequencyComparison:
    """Harmonic frequencies of a potential at its own minimum against ``level`` at that level's minimum.

    Args:
        model_or_calculator: An :class:`mlipviz.potential.MLIPCalculator` or a saved model directory.
        atoms: Starting structure, Å (each side relaxes from it).
        level: Reference level, e.g. "CCSD(T)/cc-pVDZ" (finite-difference Hessian for correlated levels).
        match: "overlap" or "order".
        threshold_cm: Flag modes whose |error| exceeds this, cm⁻¹.
        fmax: Force convergence of both relaxations, eV/Å.
        device: Torch device for the model: "auto", "cpu" or "cuda".
        reference: Reference modes already computed (skips the reference calculation).
    """
    from ..potential.hessian import model_normal_modes  # torch and SchNetPack only when a model is compared
    from ..reference.hessian import reference_normal_modes

    ref = reference if reference is not None else reference_normal_modes(atoms, level, fmax=fmax)
    mod = model_normal_modes(model_or_calculator, atoms, fmax=fmax, device=device)
    return compare_frequencies(mod, ref, match=match, threshold_cm=threshold_cm)


def plot_frequency_comparison(comparison: FrequencyComparison, ax=None):
    """Bar chart of model − reference per mode (cm⁻¹), flagged modes in red, ±threshold shaded."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    x = np.arange(len(comparison.reference_cm))
    err = comparison.error_cm
    ax.axhspan(-comparison.threshold_cm, comparison.threshold_cm, color="0.9", zorder=0,
               label=f"±{comparison.threshold_cm:g} cm⁻¹")
    ax.bar(x, err, color=np.where(comparison.flagged, "tab:red", "tab:blue"))
    for xi, e in zip(x, err):
        ax.annotate(f"{e:+.0f}", (xi, e), ha="center", va="bottom" if e >= 0 else "top", fontsize="small")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, [f"{r:.0f}" for r in comparison.reference_cm])
    ax.set_xlabel("reference mode (cm⁻¹)")
    ax.set_ylabel("model − reference (cm⁻¹)")
    ax.legend(fontsize="small")
    return ax
