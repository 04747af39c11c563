"""Reference Hessians at any level of theory, and the harmonic normal modes they give.

HF and DFT have analytic Hessians in PySCF (:func:`mlipviz.reference.sampling.normal_modes.pyscf_hessian`).
MP2, CCSD and CCSD(T) have analytic gradients only, so their Hessian is taken by central differences of
those gradients: column k is −[F(x + h e_k) − F(x − h e_k)] / 2h, which costs 2·3N gradient evaluations
(water at CCSD(T)/cc-pVDZ: 18 gradients of ~0.8 s). The truncation error is O(h²); the noise is the gradient
error divided by 2h, which is why the SCF and CC convergence of :mod:`mlipviz.reference.pyscf_driver` are tight.

References:
    Pulay, Mol. Phys. 17, 197 (1969), doi:10.1080/00268976900100941 (force constants from gradients).
    Pople, Krishnan, Schlegel, Binkley, Int. J. Quantum Chem. 16 (S13), 225 (1979),
    doi:10.1002/qua.560160825 (analytic HF second derivatives).
    Scuseria, J. Chem. Phys. 94, 442 (1991), doi:10.1063/1.460359 (analytic CCSD(T) gradients).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ..geometry import check_molecule
from ..structure_io import as_atoms
from .calculator import relax
from .levels import Level, get_level
from .pyscf_driver import run_pyscf
from .sampling.normal_modes import NormalModes, harmonic_analysis, pyscf_hessian

__all__ = ["HESSIAN_METHODS", "reference_hessian", "reference_normal_modes"]

#: How a reference Hessian may be taken.
HESSIAN_METHODS = ("auto", "analytic", "finite differences")


def reference_hessian(atoms: Atoms, level: str | Level, method: str = "auto", step_A: float = 5e-3,
                      symmetrize: bool = True) -> np.ndarray:
    """Cartesian Hessian of ``atoms`` at ``level``, (3N, 3N) eV/Å².

    Args:
        atoms: Isolated molecule, positions Å.
        level: Level of theory, e.g. "CCSD(T)/cc-pVDZ".
        method: "analytic" (PySCF's analytic Hessian; HF and DFT only), "finite differences" (central
            differences of analytic gradients, any level with gradients) or "auto" (analytic where it exists).
        step_A: Displacement of the finite differences, Å.
        symmetrize: Return (H + Hᵀ)/2 for finite differences (the analytic Hessian is symmetric already).

    Returns:
        The Hessian, row and column index 3·atom + xyz, eV/Å².

    Raises:
        ValueError: for an unknown method, a non-positive step, a bad structure or level, or an analytic
            Hessian asked at a correlated level.
    """
    check_molecule(atoms)
    level = get_level(level)
    if method not in HESSIAN_METHODS:
        raise ValueError(f"method={method!r} is not one of {HESSIAN_METHODS}.")
    analytic_exists = level.spec.kind in ("hf", "dft")
    if method == "analytic" and not analytic_exists:
        raise ValueError(f"PySCF has no analytic Hessian for {level.name}; use method='finite differences'.")
    if method == "analytic" or (method == "auto" and analytic_exists):
        return pyscf_hessian(atoms, level)
    if not (np.isfinite(step_A) and step_A > 0):
        raise ValueError(f"step_A must be a positive displacement in Å, got {step_A!r}.")
    n3 = 3 * len(atoms)
    h = np.zeros((n3, n3))
    for k in range(n3):
        f = []
        for sign in (1, -1):
            disp = atoms.copy()
            disp.positions[k // 3, k % 3] += sign * step_A
            res = run_pyscf(disp, level, forces=True)
            if not res.converged:
                raise ValueError(f"{level.name} did not converge for the displacement {sign * step_A:+g} Å of "
                                 f"coordinate {k} (atom {k // 3}, {'xyz'[k % 3]}).")
            f.append(res.forces.reshape(-1))
        h[:, k] = -(f[0] - f[1]) / (2 * step_A)
    return 0.5 * (h + h.T) if symmetrize else h


def reference_normal_modes(atoms: Atoms | str, level: str | Level, optimize: bool = True, fmax: float = 1e-3,
                           steps: int = 200, method: str = "auto", step_A: float = 5e-3) -> NormalModes:
    """Harmonic normal modes at ``level``, at that level's minimum near ``atoms``.

    Args:
        atoms: Starting structure (Å), or the path of a structure file (its first frame).
        level: Level of theory for the relaxation and the Hessian.
        optimize: Relax first (ASE BFGS on :class:`mlipviz.reference.PySCFCalculator`).
        fmax: Force convergence, eV/Å.
        steps: Most BFGS steps.
        method, step_A: As for :func:`reference_hessian`.

    Returns:
        :class:`NormalModes` (``.frequencies_cm`` in cm⁻¹).

    Raises:
        ValueError: when the relaxation does not converge or the structure is not a minimum.
    """
    work = as_atoms(atoms).copy()
    check_molecule(work)
    if optimize:
        work, converged = relax(work, level, fmax=fmax, steps=steps)
        if not converged:
            raise ValueError(f"The relaxation at {get_level(level).name} did not reach fmax={fmax} eV/Å in {steps} "
                             "steps.")
    return harmonic_analysis(work, reference_hessian(work, level, method=method, step_A=step_A))
