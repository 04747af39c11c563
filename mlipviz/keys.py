"""Every info/array key mlipviz reads or writes, named once.

Energies are in eV, forces in eV/Å, positions in Å, times in seconds unless a key says otherwise.
Multi-level datasets keep one energy/forces pair per level of theory side by side, under keys made by
:func:`energy_key` and :func:`forces_key` from the level's slug (for example ``ccsdt_ccpvdz``).
"""

from typing import Final

#: Total potential energy of a structure, eV (``atoms.info`` / SchNetPack property).
ENERGY: Final[str] = "energy"
#: Atomic forces, (n_atoms, 3) eV/Å (``atoms.arrays`` / SchNetPack property).
FORCES: Final[str] = "forces"
#: Per-atom energy contributions, (n_atoms,) eV; they sum to :data:`ENERGY` (ASE's name).
ENERGIES: Final[str] = "energies"

#: Level of theory as "METHOD/basis", for example "CCSD(T)/cc-pVDZ".
LEVEL: Final[str] = "level"
#: Electronic-structure method name as registered in :mod:`mlipviz.reference.levels`.
METHOD: Final[str] = "method"
#: Gaussian basis-set name.
BASIS: Final[str] = "basis"
#: Whether core orbitals were frozen in the correlation treatment.
FROZEN_CORE: Final[str] = "frozen_core"
#: Total molecular charge, e.
CHARGE: Final[str] = "charge"
#: Number of unpaired electrons, 2S.
SPIN: Final[str] = "spin"
#: PySCF version that produced a label.
PYSCF_VERSION: Final[str] = "pyscf_version"
#: mlipviz version that produced a label.
MLIPVIZ_VERSION: Final[str] = "mlipviz_version"
#: True when every SCF / correlated iteration converged.
CONVERGED: Final[str] = "converged"
#: Wall time of one label (energy + forces), s.
WALL_TIME: Final[str] = "wall_time_s"
#: T1 diagnostic of a coupled-cluster calculation (dimensionless; > 0.02 hints at multireference).
T1_DIAGNOSTIC: Final[str] = "t1_diagnostic"
#: Host name of the machine that computed a record.
HOST: Final[str] = "host"
#: PySCF OpenMP threads a record was computed with.
THREADS: Final[str] = "threads"
#: Threads of numpy's BLAS a record was computed with (PySCF's own bundled BLAS is single-threaded by build).
BLAS_THREADS: Final[str] = "blas_threads"
#: True when the record needed the fallback SCF settings (level shift, atom guess).
RETRIED: Final[str] = "retried"
#: SCF iterations of a record.
SCF_CYCLES: Final[str] = "scf_cycles"
#: Coupled-cluster amplitude iterations of a record.
CC_CYCLES: Final[str] = "cc_cycles"
#: How forces were obtained: "analytic", "finite differences" or "none".
FORCES_METHOD: Final[str] = "forces_method"
#: Largest |analytic − finite-difference| force component of a checked record, eV/Å.
FD_CHECK_MAX_ERROR: Final[str] = "fd_check_max_error"
#: Whether a checked record's analytic forces agreed with finite differences.
FD_CHECK_PASSED: Final[str] = "fd_check_passed"
#: How a geometry was made, e.g. "rigid distance scan" (set by :mod:`mlipviz.reference.samplers`).
SAMPLER: Final[str] = "sampler"
#: Centre-of-mass distance between the two fragments of a rigid-body sample, Å.
COM_DISTANCE: Final[str] = "com_distance_A"
#: Intermolecular distance of an S22x5 geometry, as a multiple of the S22 equilibrium one.
S22X5_FACTOR: Final[str] = "s22x5_factor"
#: Temperature a geometry was sampled at, K.
SAMPLING_TEMPERATURE: Final[str] = "sampling_temperature_K"

#: Provenance fields written for every label, in this order.
PROVENANCE_FIELDS: Final[tuple[str, ...]] = (
    LEVEL,
    METHOD,
    BASIS,
    FROZEN_CORE,
    CHARGE,
    SPIN,
    PYSCF_VERSION,
    MLIPVIZ_VERSION,
    CONVERGED,
    WALL_TIME,
)


def energy_key(slug: str) -> str:
    """Info key of the energy (eV) at the level with this slug, e.g. ``energy_ccsdt_ccpvdz``."""
    return f"{ENERGY}_{slug}"


def forces_key(slug: str) -> str:
    """Array key of the forces (eV/Å) at the level with this slug, e.g. ``forces_ccsdt_ccpvdz``."""
    return f"{FORCES}_{slug}"


def provenance_key(slug: str, field: str) -> str:
    """Info key of one provenance field of one level, e.g. ``ccsdt_ccpvdz_wall_time_s``."""
    return f"{slug}_{field}"
