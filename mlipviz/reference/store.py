"""Append-only, crash-safe storage of labelling records.

One record per line of a JSON Lines file. Each record is written, flushed and ``fsync``-ed before the campaign
moves on, so a finished record survives a crash (SIGKILL, power loss) at any later moment. A crash *during*
a write can leave at most one unterminated last line; it was never acknowledged, and :class:`RecordStore`
cuts it off when it opens the file. Records are keyed by a hash of geometry and level (:func:`task_key`), so
reopening a store and re-running a campaign skips work that is already done and never duplicates it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from ase import Atoms

from .. import keys
from .levels import Level, get_level

__all__ = ["RecordStore", "task_key", "geometry_key", "STATUS_OK", "STATUS_FAILED"]

STATUS_OK = "ok"
STATUS_FAILED = "failed"
#: Positions are rounded to this many decimals (Å) before hashing, so float noise does not change a key.
KEY_DECIMALS = 8


def _hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def _geometry(atoms: Atoms) -> dict:
    pos = np.round(np.asarray(atoms.get_positions(), dtype=float), KEY_DECIMALS) + 0.0  # +0.0 folds -0.0
    return {"numbers": atoms.get_atomic_numbers().tolist(), "positions": pos.tolist()}


def geometry_key(atoms: Atoms) -> str:
    """Stable hash of atomic numbers and positions (to 1e-8 Å): the same geometry at any level."""
    return _hash(_geometry(atoms))


def task_key(atoms: Atoms, level: str | Level, forces: bool = True) -> str:
    """Stable hash of (geometry, level with basis/charge/spin/frozen core, whether forces were asked)."""
    return _hash({**_geometry(atoms), "level": get_level(level).as_dict(), "forces": bool(forces)})


class RecordStore:
    """A JSON Lines file of labelling records, opened for appending.

    Args:
        path: The ``.jsonl`` file; created if missing.

    Attributes:
        records: Every complete record in file order.
        repaired_bytes: Bytes of an unterminated last line removed on opening (0 normally).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired_bytes = 0
        self.records: list[dict] = []
        self._by_key: dict[str, dict] = {}
        if self.path.exists():
            self._load()
        else:
            self.path.touch()

    def _load(self) -> None:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # an unterminated line: a write that never finished
            self.repaired_bytes = len(data) - end
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
        for n, line in enumerate(data[:end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{self.path}: line {n} is not a JSON record ({err}); the store is damaged.") from err
            self._index(rec)

    def _index(self, rec: dict) -> None:
        self.records.append(rec)
        prev = self._by_key.get(rec["key"])
        if prev is None or (prev["status"] != STATUS_OK and rec["status"] == STATUS_OK):
            self._by_key[rec["key"]] = rec

    def __contains__(self, key: str) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: str) -> dict | None:
        """The record of ``key`` (the successful one if there are several), or None."""
        return self._by_key.get(key)

    def done(self, key: str, retry_failed: bool = False) -> bool:
        """Whether ``key`` needs no more work (a stored success, or a stored failure unless retrying)."""
        rec = self._by_key.get(key)
        return rec is not None and (rec["status"] == STATUS_OK or not retry_failed)

    def append(self, record: dict) -> None:
        """Write one record durably (write, flush, fsync) and index it.

        Raises:
            ValueError: if the record lacks a key or status, or is not JSON-serialisable.
        """
        if "key" not in record or record.get("status") not in (STATUS_OK, STATUS_FAILED):
            raise ValueError("A record needs a 'key' and a 'status' of 'ok' or 'failed'.")
        line = json.dumps(record, sort_keys=True, allow_nan=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._index(record)

    def successes(self) -> Iterator[dict]:
        """Successful records, one per key, in first-seen order."""
        return (r for r in self._by_key.values() if r["status"] == STATUS_OK)

    def failures(self) -> list[dict]:
        """Keys whose only records are failures, with their reasons."""
        return [r for r in self._by_key.values() if r["status"] == STATUS_FAILED]

    def to_images(self) -> list[Atoms]:
        """Merge successful records by geometry into structures with every level side by side.

        Returns:
            One :class:`ase.Atoms` per distinct geometry, in first-seen order, with ``energy_<slug>``,
            ``forces_<slug>`` and ``<slug>_<provenance field>`` keys (see :mod:`mlipviz.keys`).
        """
        images: dict[str, Atoms] = {}
        for rec in self.successes():
            gkey = rec["geometry_key"]
            if gkey not in images:
                images[gkey] = Atoms(numbers=rec["numbers"], positions=rec["positions"])
                images[gkey].info.update(rec.get("info", {}))
            atoms, slug = images[gkey], rec["slug"]
            atoms.info[keys.energy_key(slug)] = rec["energy"]
            if rec.get("forces") is not None:
                atoms.arrays[keys.forces_key(slug)] = np.asarray(rec["forces"], dtype=float)
            for field, value in rec["provenance"].items():
                atoms.info[keys.provenance_key(slug, field)] = value
        return list(images.values())
