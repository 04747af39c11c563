"""How far one level of theory sits from another on the same geometries (e.g. B3LYP vs CCSD(T)).

Absolute energies of different methods differ by a constant that does not matter for dynamics, so energy
errors are compared after removing the mean offset (relative energies). Forces are compared directly.
Every MAE comes from :func:`~mlipviz.metrology.errors.error_stats`, with its bootstrap confidence interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..geometry import bonds_of
from ..reference.labelling import level_energy, level_forces
from ..reference.levels import Level, get_level
from .errors import ErrorStat, error_stats

__all__ = ["LevelComparison", "compare_levels", "errors_by_stretch", "relative_energy_errors", "plot_level_comparison"]


@dataclass
class LevelComparison:
    """Errors of ``level`` against ``reference`` on the same geometries.

    Attributes:
        level: The level being judged, e.g. "B3LYP/cc-pVDZ".
        reference: The reference level, e.g. "CCSD(T)/cc-pVDZ".
        offset: Mean energy difference level − reference, eV (removed from ``energy_errors``).
        energy_errors: (n,) relative-energy errors, eV.
        force_errors: (n, n_atoms, 3) force errors, eV/Å (all structures must have equal size).
        symbols: (n_atoms,) element symbols.
        energy: Relative-energy ``{"MAE", "RMSE"}`` in meV with bootstrap intervals (offset refitted in
            every resample).
        forces: Force-component ``{"MAE", "RMSE"}`` in meV/Å with bootstrap intervals over structures.
    """

    level: str
    reference: str
    offset: float
    energy_errors: np.ndarray
    force_errors: np.ndarray
    symbols: list[str]
    energy: dict[str, ErrorStat] = field(default_factory=dict)
    forces: dict[str, ErrorStat] = field(default_factory=dict)

    @property
    def energy_mae_meV(self) -> float:
        """Relative-energy MAE, meV."""
        return 1e3 * float(np.abs(self.energy_errors).mean())

    @property
    def force_mae_meV_per_A(self) -> float:
        """Force-component MAE, meV/Å."""
        return 1e3 * float(np.abs(self.force_errors).mean())

    def force_stats_by_element(self, **kwargs) -> dict[str, dict[str, ErrorStat]]:
        """Force-component ``{"MAE", "RMSE"}`` per element, meV/Å, with bootstrap intervals over structures.

        Args:
            **kwargs: Passed to :func:`~mlipviz.metrology.errors.error_stats` (``n_boot``, ``confidence``, ``seed``).
        """
        sym = np.array(self.symbols)
        out = {}
        for s in dict.fromkeys(self.symbols):
            errs = self.force_errors[:, sym == s]
            out[s] = error_stats(errs, np.zeros_like(errs), unit="meV/Å", scale=1e3, **kwargs)
        return out

    def force_mae_by_element(self) -> dict[str, float]:
        """Force-component MAE per element, meV/Å."""
        sym = np.array(self.symbols)
        return {s: 1e3 * float(np.abs(self.force_errors[:, sym == s]).mean()) for s in dict.fromkeys(self.symbols)}

    def per_atom_force_error(self) -> np.ndarray:
        """|ΔF| per atom averaged over structures, (n_atoms,) eV/Å (for colouring a 3D view)."""
        return np.linalg.norm(self.force_errors, axis=-1).mean(axis=0)


def compare_levels(images, level: str | Level, reference: str | Level = "CCSD(T)/cc-pVDZ", n_boot: int = 2000,
                   confidence: float = 0.95, seed: int = 0) -> LevelComparison:
    """Compare ``level`` against ``reference`` on structures labelled at both.

    Args:
        images: Structures labelled at both levels (same atoms in the same order), at least 2.
        level: The level being judged.
        reference: The reference level.
        n_boot: Bootstrap resamples of the confidence intervals.
        confidence: Confidence level of the intervals.
        seed: Seed of the resampling.

    Raises:
        KeyError: if some structure lacks one of the levels.
        ValueError: if the structures do not all have the same atoms, or there are fewer than 2.
    """
    lv, ref = get_level(level), get_level(reference)
    images = list(images)
    if len(images) < 2:
        raise ValueError(f"compare_levels needs at least 2 structures for a confidence interval, got {len(images)}.")
    symbols = images[0].get_chemical_symbols()
    if any(a.get_chemical_symbols() != symbols for a in images):
        raise ValueError("compare_levels needs structures with the same atoms in the same order.")
    e_lv, e_ref = level_energy(images, lv), level_energy(images, ref)
    f_lv, f_ref = level_forces(images, lv), level_forces(images, ref)
    de, df = e_lv - e_ref, np.stack(f_lv) - np.stack(f_ref)
    kw = dict(n_boot=n_boot, confidence=confidence, seed=seed)
    return LevelComparison(
        lv.name, ref.name, float(de.mean()), de - de.mean(), df, symbols,
        energy=error_stats(e_lv, e_ref, unit="meV", scale=1e3, remove_offset=True, **kw),
        forces=error_stats(f_lv, f_ref, unit="meV/Å", scale=1e3, **kw),
    )


def plot_level_comparison(comparison: LevelComparison, axes=None):
    """Histograms of relative-energy errors (meV) and force-component errors (meV/Å).

    Returns:
        The two axes.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    c = comparison
    axes[0].hist(1e3 * c.energy_errors, bins=30, color="tab:blue", alpha=0.8)
    axes[0].set_xlabel(f"E[{c.level}] − E[{c.reference}] − offset (meV)")
    axes[0].set_ylabel("structures")
    title = f"[{c.energy['MAE'].low:.1f}, {c.energy['MAE'].high:.1f}]" if c.energy else ""
    axes[0].set_title(f"relative energy: MAE {c.energy_mae_meV:.1f} meV {title}", fontsize=9)
    sym = np.array(c.symbols)
    for s in dict.fromkeys(c.symbols):
        axes[1].hist(1e3 * c.force_errors[:, sym == s].ravel(), bins=40, alpha=0.6, label=s)
    axes[1].set_xlabel("force component error (meV/Å)")
    title = f"[{c.forces['MAE'].low:.0f}, {c.forces['MAE'].high:.0f}]" if c.forces else ""
    axes[1].set_title(f"forces: MAE {c.force_mae_meV_per_A:.0f} meV/Å {title}", fontsize=9)
    axes[1].legend(title="element")
    return axes


def errors_by_stretch(comparison: LevelComparison, images, n_bins: int = 4) -> dict[str, np.ndarray]:
    """Errors per geometry region: structures binned by their largest bond stretch.

    The stretch of a structure is max |r_b − r̄_b| over the bonds b of the first structure (r̄_b: the mean
    length of bond b over all structures), in Å. Bins hold equal numbers of structures.

    Returns:
        ``{"stretch_A": bin centres (n_bins,), "energy_mae_meV": (n_bins,), "force_mae_meV_per_A": (n_bins,),
        "force_mae_ci_meV_per_A": (n_bins, 2) bootstrap 95 % interval (NaN for bins of fewer than 2 structures),
        "count": (n_bins,)}``.
    """
    bonds = bonds_of(images[0])
    if len(bonds) == 0:
        raise ValueError("The first structure has no bonds to measure a stretch by.")
    pos = np.stack([a.get_positions() for a in images])
    lengths = np.linalg.norm(pos[:, bonds[:, 0]] - pos[:, bonds[:, 1]], axis=-1)
    stretch = np.abs(lengths - lengths.mean(axis=0)).max(axis=1)
    edges = np.quantile(stretch, np.linspace(0, 1, n_bins + 1))
    which = np.clip(np.searchsorted(edges, stretch, side="right") - 1, 0, n_bins - 1)
    out = {k: np.zeros(n_bins) for k in ("stretch_A", "energy_mae_meV", "force_mae_meV_per_A", "count")}
    out["force_mae_ci_meV_per_A"] = np.full((n_bins, 2), np.nan)
    for b in range(n_bins):
        m = which == b
        out["stretch_A"][b] = stretch[m].mean() if m.any() else np.nan
        out["energy_mae_meV"][b] = 1e3 * np.abs(comparison.energy_errors[m]).mean() if m.any() else np.nan
        out["force_mae_meV_per_A"][b] = 1e3 * np.abs(comparison.force_errors[m]).mean() if m.any() else np.nan
        out["count"][b] = m.sum()
        if m.sum() >= 2:
            f = error_stats(comparison.force_errors[m], np.zeros_like(comparison.force_errors[m]), scale=1e3)["MAE"]
            out["force_mae_ci_meV_per_A"][b] = f.low, f.high
    return out


def relative_energy_errors(images, level: str | Level, reference: str | Level = "CCSD(T)/cc-pVDZ") -> np.ndarray:
    """Errors of conformer energies relative to the reference's lowest structure, (n,) eV.

    ΔE_i = E_i − E_min is taken at both levels, with the *reference* minimum as the anchor for both, and the
    error is ΔE_i[level] − ΔE_i[reference]; it is zero at the anchor by construction.
    """
    e_lv, e_ref = level_energy(images, level), level_energy(images, reference)
    anchor = int(np.argmin(e_ref))
    return (e_lv - e_lv[anchor]) - (e_ref - e_ref[anchor])
