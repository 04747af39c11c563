"""Run PySCF for one structure at one level of theory: energy and analytic forces.

This is the only module that talks to PySCF's solvers. It returns plain numbers in eV and eV/Å; see
:mod:`mlipviz.reference.labelling` for provenance and :mod:`mlipviz.reference.calculator` for the ASE
calculator.

References:
    Sun et al., J. Chem. Phys. 153, 024109 (2020), doi:10.1063/5.0006074 (PySCF).
    Scuseria, J. Chem. Phys. 94, 442 (1991), doi:10.1063/1.460359 (analytic CCSD(T) gradients).
    Lee, Taylor, Int. J. Quantum Chem. 36 (S23), 199 (1989), doi:10.1002/qua.560360824 (T1 diagnostic).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units

from ..geometry import check_molecule
from .levels import Level, get_level
from .validate import check_level

__all__ = ["PySCFResult", "run_pyscf", "UntrustedGradientError", "describe_grid"]

#: SCF energy convergence, Ha. Tight, because forces are checked against finite differences.
SCF_CONV_TOL = 1e-10
#: CC energy convergence, Ha.
CC_CONV_TOL = 1e-9


#: SCF settings a caller may change (the campaign's fallback uses level_shift and init_guess).
SCF_OPTIONS = ("level_shift", "init_guess", "max_cycle", "damp", "diis_space")


class UntrustedGradientError(ValueError):
    """PySCF has no trustworthy analytic gradient for this level (see the message for the reason)."""


@dataclass
class PySCFResult:
    """One single-point result.

    Attributes:
        energy: Total energy, eV.
        forces: (n_atoms, 3) forces, eV/Å; ``None`` when forces were not requested.
        converged: True when the SCF and every correlated step (CC amplitudes, (T) lambda) converged.
        wall_time: Wall time, s.
        t1_diagnostic: T1 diagnostic for CC levels, otherwise ``None``.
        details: Per-step convergence flags and iteration counts.
        xc: The exact PySCF ``mf.xc`` string of a DFT level, otherwise ``None``.
        dft_grid: The integration grid of a DFT level (:func:`describe_grid`), otherwise ``None``.
    """

    energy: float
    forces: np.ndarray | None
    converged: bool
    wall_time: float
    t1_diagnostic: float | None = None
    details: dict = field(default_factory=dict)
    xc: str | None = None
    dft_grid: str | None = None


def build_mole(atoms: Atoms, level: str | Level, verbose: int = 0):
    """A PySCF ``Mole`` for ``atoms`` (positions in Å) at ``level``, after validating both.

    Raises:
        ValueError: from :func:`mlipviz.geometry.check_molecule` (bad or periodic geometry) or
            :func:`mlipviz.reference.validate.check_level` (basis, charge, spin, electron and orbital count).
    """
    from pyscf import gto

    level = get_level(level)
    check_molecule(atoms)
    spin = check_level(atoms, level)
    return gto.M(
        atom=[(s, tuple(p)) for s, p in zip(atoms.get_chemical_symbols(), atoms.get_positions())],
        unit="Angstrom",
        basis=level.basis,
        charge=level.charge,
        spin=spin,
        verbose=verbose,
    )


def check_gradient_trusted(level: Level, spin: int) -> None:
    """Refuse levels whose PySCF analytic gradient is known to be wrong.

    Raises:
        UntrustedGradientError: for open-shell CCSD(T) (UCCSD(T) gradients are off by up to 4e-4 Ha/Bohr,
            pyscf issue 3305).
    """
    if spin and not level.spec.open_shell_gradient:
        raise UntrustedGradientError(
            f"{level.name} with spin={spin} needs UCCSD(T) gradients, which PySCF gets wrong "
            "(pyscf issue 3305). Use energies only (forces=False) or a closed-shell system."
        )


def check_dispersion_available(level: Level) -> None:
    """Refuse a dispersion-corrected level when PySCF's D3/D4 interface is not installed.

    Raises:
        ValueError: naming the level and the package to install.
    """
    if not level.spec.disp:
        return
    try:
        import pyscf.dispersion  # noqa: F401  (the pyscf-dispersion package)
    except ImportError:
        raise ValueError(
            f"{level.name} needs PySCF's dispersion interface: pip install pyscf-dispersion."
        ) from None


def check_xc_definition(level: Level) -> None:
    """Refuse plain B3LYP when PySCF is configured to read "b3lyp" as the VWN5 form.

    mlipviz's "B3LYP" is PySCF's default "b3lyp" (libxc ``HYB_GGA_XC_B3LYP``, VWN-RPA), the form of every stored
    B3LYP label; the setting ``B3LYP_WITH_VWN5 = True`` in a ``pyscf_conf.py`` would silently change it.

    Raises:
        ValueError: naming the setting and the explicit level names to use instead.
    """
    if level.spec.xc != "b3lyp":
        return
    from pyscf.dft import libxc

    if libxc.parse_xc("b3lyp") != libxc.parse_xc("b3lypg"):
        raise ValueError(
            f"{level.name}: PySCF is configured (B3LYP_WITH_VWN5) to read 'b3lyp' as the VWN5 form, but mlipviz's "
            "B3LYP is the VWN-RPA form of its stored labels. Name the form: 'B3LYP-VWN5' or 'B3LYP-VWN-RPA'."
        )


def describe_grid(mf) -> str:
    """The DFT integration grid of a PySCF mean field, as one line of ``key=value`` words.

    Gives ``grids.level``, the radial scheme, the pruning and atom-partition functions, and per element the
    radial × angular (Lebedev) points before pruning, e.g. ``level=3 radial=treutler_ahlrichs
    prune=nwchem_prune partition=original_becke H=50x302 O=75x302``; with ``nlc_level`` for VV10 functionals.
    """
    from pyscf import gto
    from pyscf.dft import gen_grid

    grids = mf.grids

    def name(fn):
        return getattr(fn, "__name__", str(fn))

    words = [f"level={grids.level}", f"radial={name(grids.radi_method)}", f"prune={name(grids.prune)}",
             f"partition={name(grids.becke_scheme)}"]
    atom_grid = grids.atom_grid
    for z, symbol in sorted({(gto.charge(s), s) for s in map(mf.mol.atom_pure_symbol, range(mf.mol.natm))}):
        given = atom_grid if isinstance(atom_grid, (tuple, list)) else atom_grid.get(symbol, atom_grid.get("default"))
        n_rad, n_ang = given or (gen_grid._default_rad(z, grids.level), gen_grid._default_ang(z, grids.level))
        words.append(f"{symbol}={int(n_rad)}x{int(n_ang)}")
    if mf.do_nlc():
        words.append(f"nlc_level={mf.nlcgrids.level}")
    return " ".join(words)


def _mean_field(mol, level: Level, scf_options: dict | None = None):
    from pyscf import dft, scf

    restricted = mol.spin == 0
    if level.spec.kind == "dft":
        check_xc_definition(level)
        mf = dft.RKS(mol) if restricted else dft.UKS(mol)
        mf.xc = level.spec.xc
        if level.spec.disp:
            check_dispersion_available(level)
            mf.disp = level.spec.disp
    else:
        mf = scf.RHF(mol) if restricted else scf.UHF(mol)
    mf.conv_tol = SCF_CONV_TOL
    for name, value in (scf_options or {}).items():
        if name not in SCF_OPTIONS:
            raise ValueError(f"Unknown SCF option {name!r}; allowed: {sorted(SCF_OPTIONS)}.")
        setattr(mf, name, value)
    return mf


def run_pyscf(
    atoms: Atoms, level: str | Level, forces: bool = True, verbose: int = 0, scf_options: dict | None = None
) -> PySCFResult:
    """Energy and (optionally) analytic forces of ``atoms`` at ``level``.

    Args:
        atoms: Structure, positions in Å. Checked for unknown elements, NaNs and overlapping atoms.
        level: Level of theory, e.g. "CCSD(T)/cc-pVDZ" or a :class:`Level`.
        forces: Compute analytic forces too.
        verbose: PySCF verbosity (0 silent, 4 chatty).
        scf_options: SCF settings to override, from :data:`SCF_OPTIONS` (e.g. ``{"level_shift": 0.5}``).

    Returns:
        A :class:`PySCFResult` with energy in eV and forces in eV/Å.

    Raises:
        ValueError: for bad or periodic structures, unknown levels or bases, impossible charge/spin, or more
            electrons than the basis holds; all before any SCF starts.
        UntrustedGradientError: when forces are requested at a level whose PySCF gradient is known wrong.
    """
    from pyscf import cc, mp

    level = get_level(level)
    mol = build_mole(atoms, level, verbose=verbose)
    if forces:
        check_gradient_trusted(level, mol.spin)
    kind = level.spec.kind
    details: dict = {}
    t0 = time.perf_counter()

    mf = _mean_field(mol, level, scf_options)
    mf.kernel()
    details["scf_converged"] = bool(mf.converged)
    details["scf_cycles"] = int(getattr(mf, "cycles", -1))
    frozen = None
    if level.frozen_core and level.spec.correlated:
        from pyscf.data.elements import chemcore

        frozen = chemcore(mol) or None

    t1_diag = None
    if kind in ("hf", "dft"):
        energy, solver = mf.e_tot, mf
    elif kind == "mp2":
        solver = mp.MP2(mf, frozen=frozen)
        solver.kernel()
        energy = solver.e_tot
    else:
        solver = cc.CCSD(mf, frozen=frozen)
        solver.conv_tol = CC_CONV_TOL
        solver.kernel()
        details["cc_converged"] = bool(solver.converged)
        details["cc_cycles"] = int(getattr(solver, "cycles", -1))
        energy = solver.e_tot
        if mol.spin == 0:
            t1_diag = float(solver.get_t1_diagnostic())
    grad = None
    if kind == "ccsd_t":
        from pyscf.cc import ccsd_t_lambda
        from pyscf.grad import ccsd_t as ccsd_t_grad

        eris = solver.ao2mo()
        e_t = solver.ccsd_t(eris=eris)
        energy = solver.e_tot + e_t
        if forces:
            # The (T) gradient needs the (T)-corrected lambda amplitudes, not plain CCSD lambdas.
            lam_conv, l1, l2 = ccsd_t_lambda.kernel(solver, eris, solver.t1, solver.t2, verbose=verbose)
            details["lambda_converged"] = bool(lam_conv)
            grad = ccsd_t_grad.Gradients(solver).kernel(solver.t1, solver.t2, l1, l2, eris=eris)
    elif forces:
        grad_method = solver.nuc_grad_method()
        if kind == "dft":
            # Include the derivative of the integration-grid weights, so the gradient is that of the
            # energy actually computed (finite differences agree to ~1e-6 Ha/Bohr instead of ~1e-4).
            grad_method.grid_response = True
        grad = grad_method.kernel()
        if kind in ("ccsd",):
            details["lambda_converged"] = bool(getattr(solver, "converged_lambda", True))

    wall = time.perf_counter() - t0
    xc = dft_grid = None
    if kind == "dft":
        xc, dft_grid = str(mf.xc), describe_grid(mf)
    converged = all(v for k, v in details.items() if k.endswith("converged"))
    f = None if grad is None else -np.asarray(grad) * (units.Hartree / units.Bohr)
    return PySCFResult(
        energy=float(energy) * units.Hartree,
        forces=f,
        converged=converged,
        wall_time=wall,
        t1_diagnostic=t1_diag,
        details=details,
        xc=xc,
        dft_grid=dft_grid,
    )
