"""Save and load deep ensembles: member directories plus an ``ensemble.json`` that ties them together.

A saved ensemble is a directory with ``member_0`` … ``member_{K-1}``, each a normal
:func:`mlipviz.potential.save_model` directory (weights-only ``model.pt``, ``config.json`` with SHA-256
checksums), and ``ensemble.json``: the member directories (:data:`mlipviz.keys.ENSEMBLE_MEMBERS`), the
calibration (:data:`mlipviz.keys.ENSEMBLE_CALIBRATION`), the level, the shared split, and the checksum entry of
every member's ``config.json``. That last entry covers the member's configuration and its weights, so a member
replaced by another model, or an edited ``ensemble.json``, is refused on loading. ``ensemble.json`` is written
last, after every member: an interrupted save leaves nothing that loads.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from .. import keys
from .ensemble import Ensemble, check_calibration, check_members, member_label
from .model import CONFIG_FILE, load_model, save_model

__all__ = ["ENSEMBLE_FILE", "load_ensemble", "save_ensemble"]

#: The file that ties the members of a saved ensemble together.
ENSEMBLE_FILE = "ensemble.json"
#: ``ensemble.json`` entry: each member's recorded checksums (its ``config.json`` SHA-256 entry), in member order.
ENSEMBLE_MEMBER_CHECKSUMS = keys.ENSEMBLE_MEMBER_CHECKSUMS
#: Each member's training history, beside its weights.
HISTORY_FILE = "history.json"


def save_ensemble(ensemble: Ensemble, directory: str | Path) -> Path:
    """Write ``member_0`` … ``member_{K-1}`` (weights-only, checksummed) and ``ensemble.json``, the latter last.

    An ``ensemble.json`` already there is removed first, so an interrupted save leaves no ensemble that loads.
    Each member's config records the calibration too (``metadata["calibration"]``), and ``ensemble.json`` the
    SHA-256 checksums of each member's files.

    Returns:
        The directory.
    """
    if not isinstance(ensemble, Ensemble):
        raise ValueError(f"ensemble must be an Ensemble, got {type(ensemble).__name__}.")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ENSEMBLE_FILE).unlink(missing_ok=True)
    names, checksums = [], []
    for k, (model, config) in enumerate(zip(ensemble.models, ensemble.configs)):
        config = copy.deepcopy(config)
        config.metadata[keys.ENSEMBLE_CALIBRATION] = dict(ensemble.calibration)
        name = f"member_{k}"
        save_model(model, config, directory / name)
        if k < len(ensemble.histories) and ensemble.histories[k]:
            (directory / name / HISTORY_FILE).write_text(json.dumps(ensemble.histories[k], indent=1) + "\n")
        names.append(name)
        checksums.append(json.loads((directory / name / CONFIG_FILE).read_text())[keys.MODEL_CHECKSUMS])
    data = {
        keys.ENSEMBLE_MEMBERS: names,
        ENSEMBLE_MEMBER_CHECKSUMS: checksums,
        keys.ENSEMBLE_CALIBRATION: dict(ensemble.calibration),
        keys.META_LEVEL: ensemble.level,
        keys.META_SPLIT: ensemble.split,
        **{k: v for k, v in ensemble.metadata.items() if k not in (keys.ENSEMBLE_MEMBERS, ENSEMBLE_MEMBER_CHECKSUMS)},
    }
    tmp = directory / (ENSEMBLE_FILE + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(directory / ENSEMBLE_FILE)
    ensemble.directory = directory
    return directory


def load_ensemble(directory: str | Path, device: str = "auto", trust: bool = False) -> Ensemble:
    """Load an ensemble written by :func:`save_ensemble`, verifying every member against ``ensemble.json``.

    Args:
        directory: The ensemble directory.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        trust: Passed to :func:`load_model` for each member.

    Raises:
        FileNotFoundError: when ``ensemble.json`` is missing.
        ValueError: naming the member and the field, for a missing member, fewer than 2 members, a member whose
            checksums differ from those in ``ensemble.json`` (swapped or edited), members that disagree in
            architecture, elements or level, or a calibration that differs between a member and ``ensemble.json``.
    """
    directory = Path(directory)
    path = directory / ENSEMBLE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; a saved ensemble has {ENSEMBLE_FILE} and member directories.")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); the file is damaged.") from err
    names = data.get(keys.ENSEMBLE_MEMBERS) if isinstance(data, dict) else None
    checksums = data.get(ENSEMBLE_MEMBER_CHECKSUMS) if isinstance(data, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path} has no list of member directories under {keys.ENSEMBLE_MEMBERS!r}.")
    if len(names) < 2:
        raise ValueError(f"{path} lists {len(names)} member(s) under {keys.ENSEMBLE_MEMBERS!r}; an ensemble needs "
                         f"at least 2.")
    if not isinstance(checksums, list) or len(checksums) != len(names):
        raise ValueError(f"{path} must record one checksum entry per member under {ENSEMBLE_MEMBER_CHECKSUMS!r}.")
    calibration = check_calibration(data.get(keys.ENSEMBLE_CALIBRATION))
    models, configs = [], []
    for k, name in enumerate(names):
        member = directory / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise ValueError(f"{member_label(k, name)}: {keys.ENSEMBLE_MEMBERS} entries must be relative paths inside "
                             f"{directory}.")
        if not (member / CONFIG_FILE).is_file():
            raise ValueError(f"{member_label(k, name)} is missing: {member / CONFIG_FILE} does not exist.")
        try:
            recorded = json.loads((member / CONFIG_FILE).read_text()).get(keys.MODEL_CHECKSUMS)
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
            raise ValueError(f"{member_label(k, name)}: {member / CONFIG_FILE} is damaged ({err}).") from err
        if recorded != checksums[k]:
            raise ValueError(f"{member_label(k, name)}: its config checksum ({keys.MODEL_CHECKSUMS}) does not match "
                             f"the one in {ENSEMBLE_FILE}; the member was replaced or {ENSEMBLE_FILE} was edited.")
        try:
            model, config = load_model(member, device=device, trust=trust)
        except FileNotFoundError as err:
            raise ValueError(f"{member_label(k, name)} is incomplete: {err}") from err
        except ValueError as err:  # a ChecksumError keeps its type
            raise type(err)(f"{member_label(k, name)}: {err}") from err
        if config.metadata.get(keys.ENSEMBLE_CALIBRATION, calibration) != calibration:
            raise ValueError(f"{member_label(k, name)}: its {keys.ENSEMBLE_CALIBRATION} "
                             f"{config.metadata[keys.ENSEMBLE_CALIBRATION]} differs from {calibration} in "
                             f"{ENSEMBLE_FILE}.")
        models.append(model)
        configs.append(config)
    check_members(models, configs, names)
    histories = [json.loads(p.read_text()) if (p := directory / n / HISTORY_FILE).is_file() else [] for n in names]
    skip = {keys.ENSEMBLE_MEMBERS, ENSEMBLE_MEMBER_CHECKSUMS, keys.ENSEMBLE_CALIBRATION, keys.META_LEVEL,
            keys.META_SPLIT}
    return Ensemble(models, configs, calibration=calibration, directory=directory, level=data.get(keys.META_LEVEL),
                    split=data.get(keys.META_SPLIT), metadata={k: v for k, v in data.items() if k not in skip},
                    histories=histories)

