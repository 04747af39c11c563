"""A trained Δ pair: its two members, the ASE calculator they form, and the pair's files.

A Δ pair predicts the target level (for example CCSD(T)/cc-pVDZ) as E = E_base + E_Δ and F = F_base + F_Δ: a
baseline potential trained at a cheap level (for example B3LYP/cc-pVDZ) plus a Δ model of target − baseline
(trained by :func:`mlipviz.potential.train_delta`). The members belong together only when the Δ model records
the levels it corrects between (:data:`META_DELTA_TARGET_LEVEL`, :data:`META_DELTA_BASELINE_LEVEL`), the baseline
was trained on that baseline level, and both know the same elements; :func:`check_pair` refuses anything else.

A saved pair is a directory with ``baseline/`` and ``delta/`` (each a model saved by
:func:`~mlipviz.potential.save_model`) and ``delta.json``, which names the levels and records the SHA-256 of each
member's ``config.json`` (which itself records its weights' digest): a member swapped for another is refused.

References:
    Ramakrishnan, Dral, Rupp, von Lilienfeld, J. Chem. Theory Comput. 11, 2087 (2015),
    doi:10.1021/acs.jctc.5b00099 (Δ-learning).
"""

from __future__ import annotations

import json
from pathlib import Path

from ase.calculators.calculator import Calculator, all_changes

from .. import keys
from ..reference.levels import get_level
from .calculator import MLIPCalculator
from .files import file_digest
from .model import CONFIG_FILE, ModelConfig, load_model, save_model
from .train import TrainResult

__all__ = [
    "BASELINE_DIR",
    "DELTA_DIR",
    "DELTA_FILE",
    "META_DELTA_BASELINE_LEVEL",
    "META_DELTA_TARGET_LEVEL",
    "DeltaCalculator",
    "as_member",
    "check_pair",
    "delta_level_name",
    "load_delta",
    "require_baseline_level",
    "save_delta",
]

#: Metadata of a Δ model: the level it corrects to, e.g. "CCSD(T)/cc-pVDZ".
META_DELTA_TARGET_LEVEL = keys.META_DELTA_TARGET_LEVEL
#: Metadata of a Δ model: the level it corrects from, e.g. "B3LYP/cc-pVDZ".
META_DELTA_BASELINE_LEVEL = keys.META_DELTA_BASELINE_LEVEL
#: The file of a saved pair that names its levels and ties its members together.
DELTA_FILE = "delta.json"
#: The members' subdirectories of a saved pair (and of a training work directory).
BASELINE_DIR, DELTA_DIR = "baseline", "delta"
_TARGET, _BASELINE, _SHA256 = "target_level", "baseline_level", "config_sha256"


def delta_level_name(target_level, baseline_level) -> str:
    """What a Δ model learns, e.g. "CCSD(T)/cc-pVDZ - B3LYP/cc-pVDZ" (not a level of theory)."""
    return f"{get_level(target_level).name} - {get_level(baseline_level).name}"


# --------------------------------------------------------------------------------------------- checks


def require_baseline_level(config: ModelConfig, level_name: str) -> None:
    """Refuse a baseline whose metadata does not record training on ``level_name``.

    Raises:
        ValueError: for a model without a recorded training level, or one trained on another level.
    """
    learned = config.metadata.get(keys.META_LEVEL)
    if learned is None:
        raise ValueError(f"baseline: the model's metadata records no training level ({keys.META_LEVEL!r}), so it "
                         f"cannot be confirmed to have learned baseline_level={level_name!r}.")
    try:
        learned = get_level(learned).name
    except ValueError:  # a Δ model, or a name from elsewhere: compared as written
        learned = str(learned)
    if learned != level_name:
        raise ValueError(f"baseline was trained on {learned}, not on baseline_level={level_name!r}; a Δ model "
                         f"corrects the level it was trained against.")


def check_pair(baseline: ModelConfig, delta: ModelConfig) -> tuple[str, str]:
    """The (target, baseline) level names of a Δ pair, after checking that its members belong together.

    Raises:
        ValueError: for a Δ model without Δ metadata, a baseline trained on another level than the Δ model
            corrects, or members that know different elements.
    """
    target, base = delta.metadata.get(META_DELTA_TARGET_LEVEL), delta.metadata.get(META_DELTA_BASELINE_LEVEL)
    if not target or not base:
        raise ValueError(f"delta: the model's metadata names no target and baseline level "
                         f"({META_DELTA_TARGET_LEVEL!r}, {META_DELTA_BASELINE_LEVEL!r}); it is not a Δ model "
                         f"(train one with train_delta).")
    require_baseline_level(baseline, base)
    if baseline.elements != delta.elements:
        raise ValueError(f"The baseline knows elements {baseline.elements} but the Δ model knows {delta.elements}; "
                         f"the members of a Δ pair must know the same elements.")
    return target, base


def as_member(obj, name: str) -> TrainResult:
    """A member given as a saved model directory, a (model, ModelConfig) pair, a TrainResult or an MLIPCalculator.

    Raises:
        ValueError: naming ``name``, for anything else.
    """
    if isinstance(obj, TrainResult):
        return obj
    if isinstance(obj, MLIPCalculator):
        return TrainResult(obj.model, obj.config, [])
    if isinstance(obj, (str, Path)):
        model, config = load_model(obj, device="cpu")
        return TrainResult(model, config, [], Path(obj))
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[1], ModelConfig):
        return TrainResult(obj[0], obj[1], [])
    raise ValueError(f"{name} must be a saved model directory, a (model, ModelConfig) pair, a TrainResult or an "
                     f"MLIPCalculator, got {type(obj).__name__}.")


# ----------------------------------------------------------------------------------------- the calculator


def _member(obj, name: str, device: str) -> MLIPCalculator:
    if isinstance(obj, MLIPCalculator):
        return obj
    given = as_member(obj, name)
    return MLIPCalculator(given.model, given.config, device=device)


class DeltaCalculator(Calculator):
    """A Δ pair as one ASE calculator: energy, forces and per-atom energies of baseline + Δ model.

    Each member is an :class:`~mlipviz.potential.MLIPCalculator`, so a structure outside either model's chemistry
    is refused (the error names the member). The Δ model must record the level it corrects from
    (:data:`META_DELTA_BASELINE_LEVEL`), and the baseline must have been trained on that level.

    Args:
        baseline: The baseline: a saved model directory, a ``(model, ModelConfig)`` pair, a :class:`TrainResult`
            or an :class:`~mlipviz.potential.MLIPCalculator`.
        delta: The Δ model, in any of the same forms.
        device: "auto" (CUDA when present), "cpu" or "cuda"; used for members not given as calculators.

    Attributes:
        baseline, delta: The members' calculators.
        target_level, baseline_level: Names of the level the pair predicts and of the baseline's level.

    Raises:
        ValueError: for a Δ model without Δ metadata, a baseline trained on another level than the Δ model
            corrects, or members that know different elements.
    """

    implemented_properties = ["energy", "forces", "energies"]

    def __init__(self, baseline, delta, device: str = "auto", **kwargs):
        super().__init__(**kwargs)
        self.baseline = _member(baseline, "baseline", device)
        self.delta = _member(delta, "delta", device)
        self.target_level, self.baseline_level = check_pair(self.baseline.config, self.delta.config)
        self._names = {"baseline": self.baseline_level, "Δ": delta_level_name(self.target_level, self.baseline_level)}

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        Calculator.calculate(self, atoms, properties, system_changes)
        parts = []
        for name, calc in (("baseline", self.baseline), ("Δ", self.delta)):
            try:
                calc.calculate(self.atoms, properties, all_changes)
            except ValueError as err:
                raise ValueError(f"The {name} model ({self._names[name]}) refuses this structure: {err}") from err
            parts.append(calc.results)
        base, delta = parts
        self.results = {"energy": base["energy"] + delta["energy"], "forces": base["forces"] + delta["forces"]}
        if keys.ENERGIES in base and keys.ENERGIES in delta:
            self.results[keys.ENERGIES] = base[keys.ENERGIES] + delta[keys.ENERGIES]

    def save(self, directory: str | Path) -> Path:
        """Save the pair (see :func:`save_delta`)."""
        return save_delta(self.baseline, self.delta, directory)


# ---------------------------------------------------------------------------------------------- files


def save_delta(baseline, delta, directory: str | Path) -> Path:
    """Save a Δ pair: ``baseline/`` and ``delta/`` model directories and ``delta.json``.

    Args:
        baseline: The baseline: a saved model directory, a ``(model, ModelConfig)`` pair, a :class:`TrainResult`
            or an MLIPCalculator.
        delta: The Δ model, in any of the same forms.
        directory: Where to write the pair.

    Returns:
        ``directory``.

    Raises:
        ValueError: for members that do not belong together (see :class:`DeltaCalculator`).
    """
    base, delta = as_member(baseline, "baseline"), as_member(delta, "delta")
    levels = check_pair(base.config, delta.config)
    directory = Path(directory)
    save_model(base.model, base.config, directory / BASELINE_DIR)
    save_model(delta.model, delta.config, directory / DELTA_DIR)
    record = {_TARGET: levels[0], _BASELINE: levels[1],
              _SHA256: {sub: file_digest(directory / sub / CONFIG_FILE) for sub in (BASELINE_DIR, DELTA_DIR)}}
    tmp = directory / (DELTA_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(directory / DELTA_FILE)  # written last: an interrupted save leaves no pair that loads
    return directory


def load_delta(directory: str | Path, device: str = "auto") -> DeltaCalculator:
    """Load a pair saved by :func:`save_delta` as a :class:`DeltaCalculator`.

    Raises:
        FileNotFoundError: naming a missing file.
        ValueError: for a member whose ``config.json`` is not the one saved with the pair, or levels that
            disagree with ``delta.json``.
    """
    directory = Path(directory)
    path = directory / DELTA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; a saved Δ pair has {DELTA_FILE}, {BASELINE_DIR}/ and "
                                f"{DELTA_DIR}/.")
    try:
        record = json.loads(path.read_text())
        digests = {sub: record[_SHA256][sub] for sub in (BASELINE_DIR, DELTA_DIR)}
        levels = (record[_TARGET], record[_BASELINE])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is damaged or not a Δ pair record ({type(err).__name__}: {err}).") from err
    for sub, digest in digests.items():
        config_path = directory / sub / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"{config_path} is missing; the pair's {sub} model is gone.")
        if file_digest(config_path) != digest:
            raise ValueError(f"{config_path} is not the {sub} model saved with this pair (its SHA-256 differs from "
                             f"{DELTA_FILE}'s); members cannot be swapped.")
    calc = DeltaCalculator(directory / BASELINE_DIR, directory / DELTA_DIR, device=device)
    if (calc.target_level, calc.baseline_level) != levels:
        raise ValueError(f"{path} names levels {levels}, but the members say "
                         f"{(calc.target_level, calc.baseline_level)}.")
    return calc
