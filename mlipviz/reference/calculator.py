"""An ASE calculator for PySCF at any registered level of theory.

PySCF's own ASE calculator (``pyscf.pbc.tools.pyscf_ase.PySCF``) targets periodic mean-field runs; this
one follows ASE's Calculator contract for molecules at HF, DFT, MP2, CCSD and CCSD(T), through
:func:`mlipviz.reference.pyscf_driver.run_pyscf`, so geometry optimisers, vibrations and MD in ASE can use
CCSD(T) directly.
"""

from __future__ import annotations

from ase.calculators.calculator import Calculator, all_changes

from .levels import Level, get_level
from .pyscf_driver import run_pyscf

__all__ = ["PySCFCalculator", "relax"]


class PySCFCalculator(Calculator):
    """ASE calculator: energy (eV) and forces (eV/Å) from PySCF.

    The structure must be an isolated molecule: a periodic cell (any ``atoms.pbc``) is refused with a
    ``ValueError`` when a property is asked, as are structures the level does not fit (see
    :func:`mlipviz.reference.pyscf_driver.run_pyscf`).

    Args:
        level: Level of theory, e.g. "B3LYP/cc-pVDZ".
        **kwargs: Passed to :class:`ase.calculators.calculator.Calculator`.

    Raises:
        ValueError: for an unknown level, at construction.

    Example:
        >>> from ase.build import molecule
        >>> atoms = molecule("H2O")
        >>> atoms.calc = PySCFCalculator("HF/sto-3g")
        >>> atoms.get_potential_energy()  # doctest: +SKIP
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, level: str | Level = "HF/cc-pVDZ", **kwargs):
        super().__init__(**kwargs)
        self.level = get_level(level)
        self.last_result = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want_forces = "forces" in properties
        result = run_pyscf(self.atoms, self.level, forces=want_forces)
        self.last_result = result
        self.results = {"energy": result.energy}
        if result.forces is not None:
            self.results["forces"] = result.forces


def relax(atoms, level: str | Level, fmax: float = 1e-3, steps: int = 200):
    """Relax a copy of ``atoms`` to the nearest minimum at ``level`` (ASE BFGS on :class:`PySCFCalculator`).

    Args:
        atoms: Start structure, Å (not modified).
        level: Level of theory.
        fmax: Force convergence, eV/Å.
        steps: Most BFGS steps.

    Returns:
        ``(relaxed copy without a calculator, whether fmax was reached)``.
    """
    from ase.optimize import BFGS  # here, not at the top: it pulls in scipy.optimize, slow for Dask workers

    work = atoms.copy()
    work.calc = PySCFCalculator(level)
    converged = bool(BFGS(work, logfile=None).run(fmax=fmax, steps=steps))
    work.calc = None
    return work, converged
