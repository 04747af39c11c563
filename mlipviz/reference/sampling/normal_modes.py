"""Sampling geometries around a minimum: harmonic normal-mode sampling at a temperature.

Each normal mode k (angular frequency ω_k) is displaced by a Gaussian mass-weighted amplitude q_k with
variance

    quantum:   <q_k²> = ħ / (2 ω_k) · coth(ħ ω_k / 2 k_B T)      (thermal harmonic oscillator)
    classical: <q_k²> = k_B T / ω_k²

and the Cartesian displacement is Δx = M^{-1/2} Σ_k q_k e_k. The quantum form keeps zero-point motion, which
matters for X–H stretches (ħω ≫ k_B T at room temperature).

References:
    Smith, Isayev, Roitberg, Chem. Sci. 8, 3192 (2017), doi:10.1039/C6SC05720A (normal-mode sampling, ANI-1).
    Wilson, Decius, Cross, Molecular Vibrations (Dover, 1980) (normal-mode analysis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms, units

from ... import keys
from ...geometry import check_positive_int
from ...structure_io import as_atoms
from ..calculator import relax
from ..levels import Level, get_level

__all__ = ["NormalModes", "normal_modes", "sample_normal_modes", "mode_variances", "HBAR"]

#: Reduced Planck constant in ASE units (eV · ASE time unit).
HBAR = units._hbar * units.J * units.s


@dataclass
class NormalModes:
    """Harmonic analysis of a minimum.

    Attributes:
        atoms: The (optimised) reference structure, Å.
        hessian: (3N, 3N) Cartesian Hessian, eV/Å².
        omega: (n_modes,) angular frequencies in ASE units (sqrt(eV/Å²/amu)).
        modes: (n_modes, N, 3) orthonormal mass-weighted normal-mode vectors.
    """

    atoms: Atoms
    hessian: np.ndarray
    omega: np.ndarray
    modes: np.ndarray

    @property
    def frequencies_cm(self) -> np.ndarray:
        """Harmonic wavenumbers, cm⁻¹."""
        return HBAR * self.omega / units.invcm


def _rigid_body_basis(atoms: Atoms) -> np.ndarray:
    """Orthonormal mass-weighted translation + rotation vectors, (k, 3N) with k = 5 or 6."""
    m = atoms.get_masses()
    sqm = np.sqrt(m)
    x = atoms.get_positions() - atoms.get_center_of_mass()
    vecs = []
    for a in range(3):
        t = np.zeros((len(atoms), 3))
        t[:, a] = sqm
        vecs.append(t.ravel())
    for a in range(3):
        axis = np.zeros(3)
        axis[a] = 1.0
        vecs.append((np.cross(axis, x) * sqm[:, None]).ravel())
    q, r = np.linalg.qr(np.array(vecs).T)
    keep = np.abs(np.diag(r)) > 1e-6 * np.abs(np.diag(r)).max()
    return q[:, keep].T


def harmonic_analysis(atoms: Atoms, hessian: np.ndarray) -> NormalModes:
    """Normal modes from a Cartesian Hessian (eV/Å²), with translations and rotations projected out.

    Raises:
        ValueError: if the Hessian has the wrong shape or a negative curvature (not a minimum).
    """
    n3 = 3 * len(atoms)
    hessian = np.asarray(hessian, dtype=float).reshape(n3, n3)
    inv_sqm = np.repeat(1.0 / np.sqrt(atoms.get_masses()), 3)
    d = hessian * inv_sqm[:, None] * inv_sqm[None, :]
    d = 0.5 * (d + d.T)
    rb = _rigid_body_basis(atoms)
    proj = np.eye(n3) - rb.T @ rb
    d = proj @ d @ proj
    evals, evecs = np.linalg.eigh(d)
    n_modes = n3 - len(rb)
    order = np.argsort(np.abs(evals))[::-1][:n_modes]
    order = order[np.argsort(evals[order])]
    evals, evecs = evals[order], evecs[:, order]
    if np.any(evals <= 0):
        freqs = np.sign(evals) * HBAR * np.sqrt(np.abs(evals)) / units.invcm
        raise ValueError(
            f"The structure is not a minimum: imaginary frequencies {freqs[evals <= 0].round(1)} cm⁻¹. "
            "Optimise it first (optimize=True)."
        )
    return NormalModes(atoms=atoms.copy(), hessian=hessian, omega=np.sqrt(evals), modes=evecs.T.reshape(n_modes, -1, 3))


def pyscf_hessian(atoms: Atoms, level: str | Level) -> np.ndarray:
    """Analytic PySCF Hessian at an HF or DFT level, (3N, 3N) eV/Å²."""
    from ..pyscf_driver import _mean_field, build_mole

    level = get_level(level)
    if level.spec.kind not in ("hf", "dft"):
        raise ValueError(f"Hessians are taken at a cheap mean-field level (HF or DFT), not {level.name}.")
    mol = build_mole(atoms, level)
    mf = _mean_field(mol, level)
    mf.kernel()
    h = mf.Hessian().kernel()  # (N, N, 3, 3) Ha/Bohr²
    n = len(atoms)
    return h.transpose(0, 2, 1, 3).reshape(3 * n, 3 * n) * units.Hartree / units.Bohr**2


def normal_modes(
    atoms: Atoms | str, level: str | Level = "HF/cc-pVDZ", optimize: bool = True, fmax: float = 1e-3
) -> NormalModes:
    """Optimise ``atoms`` at a cheap level and take its normal modes from PySCF's analytic Hessian.

    Args:
        atoms: Starting structure (Å), or the path of a structure file (its first frame).
        level: Cheap HF or DFT level for the optimisation and the Hessian.
        optimize: Relax to the nearest minimum first (ASE BFGS).
        fmax: Force convergence of the optimisation, eV/Å.

    Returns:
        :class:`NormalModes` of the (optimised) structure.
    """
    work = as_atoms(atoms).copy()
    if optimize:
        work, _ = relax(work, level, fmax=fmax, steps=200)
    return harmonic_analysis(work, pyscf_hessian(work, level))


def mode_variances(omega: np.ndarray, temperature_K: float, quantum: bool = True) -> np.ndarray:
    """Variance of each mass-weighted mode amplitude, Å²·amu (see the module docstring).

    Args:
        omega: Angular frequencies, ASE units.
        temperature_K: Temperature, K. Zero is allowed in the quantum case (ground state).
        quantum: Thermal quantum oscillator (True) or classical Boltzmann (False).
    """
    omega = np.asarray(omega, dtype=float)
    if not np.isfinite(temperature_K) or temperature_K < 0:
        raise ValueError(f"temperature_K must be a finite number >= 0, got {temperature_K!r}.")
    kt = units.kB * temperature_K
    if not quantum:
        if temperature_K == 0:
            return np.zeros_like(omega)
        return kt / omega**2
    if temperature_K == 0:
        return HBAR / (2 * omega)
    return HBAR / (2 * omega) / np.tanh(HBAR * omega / (2 * kt))


def sample_normal_modes(
    modes: NormalModes,
    n_samples: int,
    temperature_K: float,
    quantum: bool = True,
    seed: int | None = 0,
) -> list[Atoms]:
    """Draw geometries from the harmonic distribution at ``temperature_K``.

    Args:
        modes: Normal modes from :func:`normal_modes`.
        n_samples: Number of geometries.
        temperature_K: Temperature, K.
        quantum: Include zero-point motion (thermal quantum oscillator) or not (classical).
        seed: Random seed; the same seed gives the same geometries.

    Returns:
        ``n_samples`` structures (Å), each with ``info["sampler"]`` ("normal modes"),
        ``info["quantum_sampling"]`` and ``info["sampling_temperature_K"]``.
    """
    check_positive_int(n_samples, "n_samples")
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(mode_variances(modes.omega, temperature_K, quantum))
    inv_sqm = 1.0 / np.sqrt(modes.atoms.get_masses())[:, None]
    q = rng.standard_normal((n_samples, len(sigma))) * sigma
    out = []
    for qi in q:
        a = modes.atoms.copy()
        a.positions += np.einsum("k,kia->ia", qi, modes.modes) * inv_sqm
        a.info[keys.SAMPLER] = keys.SAMPLER_NORMAL_MODES
        a.info[keys.QUANTUM_SAMPLING] = bool(quantum)
        a.info[keys.SAMPLING_TEMPERATURE] = float(temperature_K)
        out.append(a)
    return out
