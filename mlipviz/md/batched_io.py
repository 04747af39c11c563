"""What a batched MD run leaves on disk: extxyz trajectories, a CSV log, a checkpoint to resume from.

A run directory holds

* ``system_<k>.extxyz``: the frames of system k (positions Å, momenta, forces eV/Å, ``info`` with ``step``,
  ``time_fs`` and ``energy`` eV), readable by ``ase.io.read(path, ":")`` and nglview;
* ``log.csv``: one row per recorded frame and system (:data:`LOG_COLUMNS`, units in the names);
* ``checkpoint.pt``: the integrator state, its random generator and the records so far; it holds only tensors,
  numbers and strings and loads with ``torch.load(weights_only=True)``;
* ``run.json``: the settings of the run, which a resumed run must match.

Files are appended as frames are recorded. On resume, rows and frames written after the checkpoint are dropped
(they are recomputed, identically, from the checkpoint), so nothing appears twice.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import ase.io
import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

__all__ = ["LOG_COLUMNS", "RunFiles", "read_log"]

#: Columns of ``log.csv``.
LOG_COLUMNS = ("step", "time_fs", "system", "epot_eV", "ekin_eV", "etot_eV", "temperature_K")
CHECKPOINT = "checkpoint.pt"
SETTINGS = "run.json"
LOG = "log.csv"


def _atomic_torch_save(payload, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


class RunFiles:
    """The files of one run directory (see the module docstring).

    Args:
        directory: The run directory (created if missing).
        n_systems: Systems in the run.
    """

    def __init__(self, directory: str | Path, n_systems: int):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.n_systems = n_systems
        self.trajectories = [self.directory / f"system_{k:03d}.extxyz" for k in range(n_systems)]
        self.log = self.directory / LOG
        self.checkpoint = self.directory / CHECKPOINT
        self.settings = self.directory / SETTINGS

    # --- settings ------------------------------------------------------------------------------------------------
    def check_settings(self, settings: dict, resume: bool) -> None:
        """Write ``run.json``, or, when resuming, refuse a run whose settings differ from the saved ones."""
        if resume and self.settings.exists():
            saved = json.loads(self.settings.read_text())
            diff = {k: (saved.get(k), v) for k, v in settings.items() if saved.get(k) != v}
            if diff:
                raise ValueError(
                    f"{self.settings} was written by a run with other settings; saved vs now: {diff}. "
                    "Build the run as it was, or use a new directory."
                )
            return
        if not resume and (self.checkpoint.exists() or self.log.exists()):
            raise FileExistsError(
                f"{self.directory} already holds a run ({self.log.name}, {self.checkpoint.name}); pass resume=True to "
                "continue it, or choose a new directory (nothing there is overwritten)."
            )
        self.settings.write_text(json.dumps(settings, indent=1, sort_keys=True))

    # --- frames and log ------------------------------------------------------------------------------------------
    def start_log(self) -> None:
        if not self.log.exists():
            with self.log.open("w", newline="") as fh:
                csv.writer(fh).writerow(LOG_COLUMNS)

    def append(self, step: int, time_fs: float, systems, atoms: list[Atoms], epot, ekin, temperature, forces) -> None:
        """Append one recorded frame of the given systems to their trajectories and to the log.

        Args:
            step, time_fs: Step and time (fs) of the frame.
            systems: Original indices of the systems.
            atoms: Their structures (with momenta).
            epot, ekin, temperature: Per system, eV, eV, K.
            forces: Per system, (n_atoms, 3) eV/Å.
        """
        with self.log.open("a", newline="") as fh:
            writer = csv.writer(fh)
            for k, e, t, temp in zip(systems, epot, ekin, temperature):
                writer.writerow([step, f"{time_fs:.6g}", k, f"{e:.10g}", f"{t:.10g}", f"{e + t:.10g}", f"{temp:.6g}"])
        for k, a, e, f in zip(systems, atoms, epot, forces):
            frame = a.copy()
            frame.info.update({"step": int(step), "time_fs": float(time_fs)})
            frame.calc = SinglePointCalculator(frame, energy=float(e), forces=np.asarray(f))
            ase.io.write(self.trajectories[k], frame, format="extxyz", append=True)

    def truncate_after(self, step: int) -> list[list[Atoms]]:
        """Drop log rows and trajectory frames recorded after ``step`` (written after the last checkpoint).

        Returns:
            The frames kept, per system (empty where a system has no trajectory yet).
        """
        if self.log.exists():
            with self.log.open(newline="") as fh:
                rows = list(csv.reader(fh))
            kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= step]
            if len(kept) != len(rows):
                tmp = self.log.with_name(self.log.name + ".tmp")
                with tmp.open("w", newline="") as fh:
                    csv.writer(fh).writerows(kept)
                tmp.replace(self.log)
        kept_frames = []
        for path in self.trajectories:
            frames = ase.io.read(path, ":", format="extxyz") if path.exists() else []
            kept = [f for f in frames if int(f.info["step"]) <= step]
            if len(kept) != len(frames):
                tmp = path.with_name(path.name + ".tmp")
                ase.io.write(tmp, kept, format="extxyz")
                tmp.replace(path)
            kept_frames.append(kept)
        return kept_frames

    # --- checkpoint ----------------------------------------------------------------------------------------------
    def save_checkpoint(self, state, ensemble: str, step: int, bookkeeping: dict) -> None:
        """Write the integrator state (tensors, thermostat chain variables, RNG state), step and records."""
        tensors = {n: v.detach().cpu() for n, v in vars(state).items() if isinstance(v, torch.Tensor)}
        chains = {}
        for name, value in vars(state).items():  # Nosé–Hoover chain variables are small dataclasses of tensors
            if hasattr(value, "__dataclass_fields__") and not isinstance(value, torch.Tensor):
                chains[name] = {
                    k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v)
                    for k, v in vars(value).items()
                    if isinstance(v, (torch.Tensor, int, float))
                }
        payload = {
            "class": type(state).__name__,
            "ensemble": ensemble,
            "step": int(step),
            "tensors": tensors,
            "chains": chains,
            "rng": state.rng.get_state(),
            "bookkeeping": bookkeeping,
        }
        _atomic_torch_save(payload, self.checkpoint)

    def read_checkpoint(self) -> dict:
        """The checkpoint as written by :meth:`save_checkpoint` (its ``"bookkeeping"`` holds the records)."""
        return torch.load(self.checkpoint, map_location="cpu", weights_only=True)

    def load_checkpoint(self, state, ensemble: str, device: torch.device, payload: dict) -> int:
        """Restore ``payload`` (:meth:`read_checkpoint`) into ``state``, built the same way; returns its step."""
        if payload["ensemble"] != ensemble or payload["class"] != type(state).__name__:
            raise ValueError(
                f"{self.checkpoint} holds a {payload['ensemble']} run ({payload['class']}); this run is {ensemble}."
            )
        for name, value in payload["tensors"].items():
            setattr(state, name, value.to(device))
        for name, values in payload["chains"].items():
            chain = getattr(state, name)
            for k, v in values.items():
                setattr(chain, k, v.to(device) if isinstance(v, torch.Tensor) else v)
        state.rng.set_state(payload["rng"])
        return int(payload["step"])


def read_log(path: str | Path) -> dict[str, np.ndarray]:
    """``log.csv`` as columns (see :data:`LOG_COLUMNS`)."""
    with Path(path).open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0]) != LOG_COLUMNS:
        raise ValueError(f"{path} is not an mlipviz MD log: its header is not {LOG_COLUMNS}.")
    data = np.array(rows[1:], dtype=float).reshape(-1, len(LOG_COLUMNS))
    out = {c: data[:, i] for i, c in enumerate(LOG_COLUMNS)}
    for c in ("step", "system"):
        out[c] = out[c].astype(int)
    return out

