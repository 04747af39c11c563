"""Every key mlipviz reads or writes, named once: structure info/arrays, record fields, training metadata.

Energies are in eV, forces in eV/Å, positions in Å, times in seconds unless a key says otherwise.
Multi-level datasets keep one energy/forces pair per level of theory side by side, under keys made by
:func:`energy_key` and :func:`forces_key` from the level's slug (for example ``ccsdt_ccpvdz``).

Sections: structure keys; provenance fields; sampler names; record-store fields; training metadata and
history.
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
#: Exact PySCF exchange-correlation string of a DFT label, e.g. "b3lyp" (DFT levels only).
XC: Final[str] = "xc"
#: PySCF integration grid of a DFT label: ``grids.level`` and the radial/angular scheme (DFT levels only).
DFT_GRID: Final[str] = "dft_grid"
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
#: How a geometry was made: one of the ``SAMPLER_*`` names below (set by every sampler).
SAMPLER: Final[str] = "sampler"
#: Catalogue name of a system (see :mod:`mlipviz.reference.catalogue`).
SYSTEM: Final[str] = "system"
#: Standard deviation of a rattle, Å.
RATTLE_STDEV: Final[str] = "rattle_stdev_A"
#: Whether a normal-mode sample kept zero-point motion (quantum) or not (classical).
QUANTUM_SAMPLING: Final[str] = "quantum_sampling"
#: Which half of the S22 geometry a monomer is ("A": the first atoms, "B": the rest).
S22_MONOMER: Final[str] = "s22_monomer"
#: Centre-of-mass distance between the two fragments of a rigid-body sample, Å.
COM_DISTANCE: Final[str] = "com_distance_A"
#: Intermolecular distance of an S22x5 geometry, as a multiple of the S22 equilibrium one.
S22X5_FACTOR: Final[str] = "s22x5_factor"
#: Temperature a geometry was sampled at, K.
SAMPLING_TEMPERATURE: Final[str] = "sampling_temperature_K"

# --- Sampler names: the values of info["sampler"] ---------------------------------------------------------
#: Thermal normal-mode sampling around a minimum (:func:`mlipviz.reference.sample_normal_modes`).
SAMPLER_NORMAL_MODES: Final[str] = "normal modes"
#: Gaussian displacements of every coordinate (:func:`mlipviz.reference.rattle_sample`).
SAMPLER_RATTLE: Final[str] = "rattle"
#: Snapshots of Langevin MD (:func:`mlipviz.md.md_sample`).
SAMPLER_MD: Final[str] = "Langevin MD"
#: A fragment moved rigidly along the centre-of-mass axis (:func:`mlipviz.reference.distance_scan`).
SAMPLER_DISTANCE_SCAN: Final[str] = "rigid distance scan"
#: Random rigid orientations of two molecules (:func:`mlipviz.reference.orientation_samples`).
SAMPLER_ORIENTATION: Final[str] = "random rigid orientation"
#: A dimer of the S22x5 set (with :data:`S22X5_FACTOR`).
SAMPLER_S22X5: Final[str] = "S22x5"
#: A rigid monomer of an S22 dimer (with :data:`S22_MONOMER`).
SAMPLER_S22_MONOMER: Final[str] = "S22 monomer"

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


# --- Record-store fields: one labelling record per line of a campaign's JSON Lines store -------------------
#: Hash of (geometry, level, forces asked): the record's identity (:func:`mlipviz.reference.store.task_key`).
RECORD_KEY: Final[str] = "key"
#: Hash of the geometry alone (:func:`mlipviz.geometry.geometry_key`).
RECORD_GEOMETRY_KEY: Final[str] = "geometry_key"
#: The level's slug, e.g. "ccsdt_ccpvdz".
RECORD_SLUG: Final[str] = "slug"
#: The level as a dict (:meth:`mlipviz.reference.Level.as_dict`).
RECORD_LEVEL: Final[str] = "level"
#: Atomic numbers.
RECORD_NUMBERS: Final[str] = "numbers"
#: (n_atoms, 3) positions, Å.
RECORD_POSITIONS: Final[str] = "positions"
#: The structure's JSON-serialisable ``atoms.info`` entries.
RECORD_INFO: Final[str] = "info"
#: :data:`STATUS_OK` or :data:`STATUS_FAILED`.
RECORD_STATUS: Final[str] = "status"
#: Why a record failed.
RECORD_REASON: Final[str] = "reason"
#: Energy, eV.
RECORD_ENERGY: Final[str] = "energy"
#: (n_atoms, 3) forces, eV/Å, or null.
RECORD_FORCES: Final[str] = "forces"
#: The provenance dict (fields above).
RECORD_PROVENANCE: Final[str] = "provenance"
#: SHA-256 over the record's other fields: a damaged or edited record is named when the store opens.
RECORD_CHECKSUM: Final[str] = "checksum"
#: Status of a finished record.
STATUS_OK: Final[str] = "ok"
#: Status of a record whose calculation failed (the reason is stored).
STATUS_FAILED: Final[str] = "failed"

# --- Training metadata (``ModelConfig.metadata``) and per-epoch history --------------------------------------
#: Level of theory the model learned, e.g. "CCSD(T)/cc-pVDZ".
META_LEVEL: Final[str] = "level"
#: Structures in the training data (train + val + test).
META_N_STRUCTURES: Final[str] = "n_structures"
#: ``{"train": [...], "val": [...], "test": [...]}`` indices into the training data.
META_SPLIT: Final[str] = "split"
#: Split names inside :data:`META_SPLIT`.
SPLIT_TRAIN: Final[str] = "train"
SPLIT_VAL: Final[str] = "val"
SPLIT_TEST: Final[str] = "test"
#: Completed epochs.
META_EPOCHS: Final[str] = "epochs"
#: Training wall time, s.
META_TRAIN_WALL_TIME: Final[str] = "train_wall_time_s"
#: Torch device the model trained on.
META_DEVICE: Final[str] = "device"
#: Best validation energy MAE, eV.
META_BEST_VAL_ENERGY_MAE: Final[str] = "best_val_energy_MAE_eV"
#: Best validation force MAE, eV/Å.
META_BEST_VAL_FORCES_MAE: Final[str] = "best_val_forces_MAE_eV_per_A"
#: SchNetPack version used in training.
META_SCHNETPACK_VERSION: Final[str] = "schnetpack_version"
#: torch version used in training.
META_TORCH_VERSION: Final[str] = "torch_version"
#: History: epoch index.
HISTORY_EPOCH: Final[str] = "epoch"
#: History: validation loss.
HISTORY_VAL_LOSS: Final[str] = "val_loss"
#: History: validation energy MAE, eV (Lightning's name for SchNetPack's "MAE" metric on "energy").
HISTORY_VAL_ENERGY_MAE: Final[str] = f"val_{ENERGY}_MAE"
#: History: validation force MAE, eV/Å.
HISTORY_VAL_FORCES_MAE: Final[str] = f"val_{FORCES}_MAE"

# --- Model files, training provenance and signed errors -----------------------------------------------------------
#: ``config.json`` entry holding the SHA-256 digests of a saved model's files, ``{file name: hex digest}``.
MODEL_CHECKSUMS: Final[str] = "sha256"
#: Every level of theory found in the training data (the target level is :data:`META_LEVEL`).
META_LEVELS: Final[str] = "levels_in_data"
#: SHA-256 over the training data: each structure's geometry key, target energy and forces, in order.
META_DATASET_SHA256: Final[str] = "dataset_sha256"
#: File name (no directories) of the training data, when it came from a file.
META_DATA_FILE: Final[str] = "data_file"
#: Best validation mean signed energy error (prediction − reference), eV, from the training history.
META_BEST_VAL_ENERGY_SIGNED: Final[str] = "best_val_energy_mean_signed_error_eV"
#: Best validation mean signed force-component error, eV/Å, from the training history.
META_BEST_VAL_FORCES_SIGNED: Final[str] = "best_val_forces_mean_signed_error_eV_per_A"
#: Per-atom energy shift, eV/atom, added to the offset after training so the training-split mean error is zero.
META_ENERGY_OFFSET_REFIT: Final[str] = "energy_offset_refit_eV_per_atom"
#: Errors of the final model per split: ``{split name: {ERR_* name: value}}``.
META_ERRORS: Final[str] = "errors"
#: Inside :data:`META_ERRORS`: energy MAE, eV.
ERR_ENERGY_MAE: Final[str] = "energy_MAE_eV"
#: Inside :data:`META_ERRORS`: mean signed energy error (prediction − reference), eV.
ERR_ENERGY_SIGNED: Final[str] = "energy_mean_signed_error_eV"
#: Inside :data:`META_ERRORS`: force-component MAE, eV/Å.
ERR_FORCES_MAE: Final[str] = "forces_MAE_eV_per_A"
#: Inside :data:`META_ERRORS`: mean signed force-component error, eV/Å.
ERR_FORCES_SIGNED: Final[str] = "forces_mean_signed_error_eV_per_A"
#: Inside :data:`META_ERRORS`: structures in the split.
ERR_N: Final[str] = "n_structures"
#: Metadata of a model read from a trusted SchNetPack pickle: the file name it came from.
META_TRUSTED_PICKLE: Final[str] = "trusted_pickle"
#: History: validation mean signed energy error, eV (SchNetPack metric "MeanSignedError" on "energy").
HISTORY_VAL_ENERGY_SIGNED: Final[str] = f"val_{ENERGY}_MeanSignedError"
#: History: validation mean signed force-component error, eV/Å.
HISTORY_VAL_FORCES_SIGNED: Final[str] = f"val_{FORCES}_MeanSignedError"

# --- Uncertainty (ensembles and last-layer estimates) ------------------------------------------------------------
#: Calibrated standard deviation of the total energy, eV (ASE calculator result / ``atoms.info``).
ENERGY_UNCERTAINTY: Final[str] = "energy_uncertainty"
#: Calibrated standard deviation of each force component, (n_atoms, 3) eV/Å.
FORCES_UNCERTAINTY: Final[str] = "forces_uncertainty"
#: Per-atom uncertainty, (n_atoms,) eV/Å: the calibrated root-mean-square spread of an atom's three force components.
ATOM_UNCERTAINTY: Final[str] = "atom_uncertainty"
#: Calibrated standard deviation of each per-atom energy, (n_atoms,) eV.
ENERGIES_UNCERTAINTY: Final[str] = "energies_uncertainty"
#: ``ensemble.json`` entry: the members' directories, relative to the ensemble's directory.
ENSEMBLE_MEMBERS: Final[str] = "members"
#: ``ensemble.json`` entry: the calibration, ``{quantity: scale factor}``, fitted on the validation split.
ENSEMBLE_CALIBRATION: Final[str] = "calibration"
#: ``ensemble.json`` entry: each member's ``config.json`` SHA-256 entry (config and weights), in member order.
ENSEMBLE_MEMBER_CHECKSUMS: Final[str] = "member_sha256"
#: Ensemble metadata: calibration summary on the validation and test splits (scale, NLL raw/calibrated, RMSE).
ENSEMBLE_CALIBRATION_REPORT: Final[str] = "calibration_report"
#: Ensemble metadata: the members' training seeds.
ENSEMBLE_SEEDS: Final[str] = "seeds"

# --- Δ-learning ------------------------------------------------------------------------------------------------
#: Metadata of a Δ model: the level it corrects to, e.g. "CCSD(T)/cc-pVDZ".
META_DELTA_TARGET_LEVEL: Final[str] = "delta_target_level"
#: Metadata of a Δ model: the level it corrects from, e.g. "B3LYP/cc-pVDZ".
META_DELTA_BASELINE_LEVEL: Final[str] = "delta_baseline_level"
#: Indices into the data given of the structures a model trained on (its split indexes this list).
META_DATA_INDICES: Final[str] = "data_indices"
