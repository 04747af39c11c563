"""Append-only, crash-safe storage of labelling records.

One record per line of a JSON Lines file. Each record is written, flushed and ``fsync``-ed before the campaign
moves on, so a finished record survives a crash (SIGKILL, power loss) at any later moment. A crash *during*
a write can leave at most one unterminated last line; it was never acknowledged, and :class:`RecordStore`
cuts it off when it opens the file for appending. Records are keyed by a hash of geometry and level
(:func:`task_key`), so reopening a store and re-running a campaign skips work that is already done and never
duplicates it.

Every record carries a SHA-256 checksum of its content (:func:`record_checksum`), so a record damaged on disk
or edited by hand is named, with its line number, when the store opens, and never silently kept. Nothing in a
store is ever deleted: :meth:`RecordStore.repair` moves damaged lines to ``<store>.damaged``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from .. import keys
from ..geometry import geometry_key, geometry_payload, stable_hash
from .levels import Level, get_level

__all__ = [
    "RecordStore",
    "StoreWarning",
    "level_from_record",
    "level_record",
    "record_checksum",
    "task_key",
    "geometry_key",
    "STATUS_OK",
    "STATUS_FAILED",
]

STATUS_OK = keys.STATUS_OK
STATUS_FAILED = keys.STATUS_FAILED
#: Suffix of the file that receives damaged lines and cut-off unfinished writes (``s.jsonl.damaged``).
DAMAGED_SUFFIX = ".damaged"
_JSON_TYPES = {str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


class StoreWarning(UserWarning):
    """A record store needed attention on opening (an unfinished write, unchecked or skipped records)."""


def level_record(level: str | Level) -> dict:
    """What a record stores of its level: :meth:`Level.as_dict`, and for a level added with
    :func:`~mlipviz.reference.functionals.register_dft_level` also its ``xc`` and ``disp``, which its name alone does
    not pin down (another process may register the same name for another functional)."""
    lv = get_level(level)
    out = lv.as_dict()
    if not lv.spec.builtin:
        out.update(xc=lv.spec.xc, disp=lv.spec.disp)
    return out


def level_from_record(record: dict) -> Level:
    """The :class:`Level` of a :func:`level_record`, registering a user-defined DFT method first if this process
    (a fresh Dask worker, say) does not know it yet."""
    fields = dict(record)
    xc, disp = fields.pop("xc", None), fields.pop("disp", None)
    if xc is not None:
        from .functionals import register_dft_level

        register_dft_level(fields["method"], xc, disp)
    return Level(**fields)


def task_key(atoms: Atoms, level: str | Level, forces: bool = True) -> str:
    """Stable hash of (geometry, level with basis/charge/spin/frozen core — and the xc of a user-defined DFT
    level —, whether forces were asked)."""
    return stable_hash({**geometry_payload(atoms), "level": level_record(level), "forces": bool(forces)})


def record_checksum(record: dict) -> str:
    """SHA-256 (64 hex digits) of a record's canonical JSON, leaving out its own checksum field.

    Canonical means sorted keys, no spaces and ASCII escapes, so re-spacing a line or reordering its keys
    changes nothing, but changing any value (one digit of an energy) does.
    """
    body = {k: v for k, v in record.items() if k != keys.RECORD_CHECKSUM}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _parse_line(line: bytes) -> tuple[dict | None, str | None, bool]:
    """``(record, problem, is_json)``: the record if the line is a sound one, else what is wrong with it."""
    if not line.strip():
        return None, "is blank (every record is one non-empty line)", False
    try:
        obj = json.loads(line)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        return None, f"is not JSON ({err})", False
    if isinstance(obj, list):
        return None, "is a JSON list, not a record", True
    if not isinstance(obj, dict):
        return None, f"is a JSON {_JSON_TYPES.get(type(obj), type(obj).__name__)}, not a record", True
    missing = [repr(k) for k in (keys.RECORD_KEY, keys.RECORD_STATUS) if k not in obj]
    if missing:
        return None, f"is not a record: no {' and no '.join(missing)}", True
    if not isinstance(obj[keys.RECORD_KEY], str) or not obj[keys.RECORD_KEY]:
        return None, f"is not a record: its {keys.RECORD_KEY!r} is not a non-empty string", True
    if obj[keys.RECORD_STATUS] not in (STATUS_OK, STATUS_FAILED):
        return None, (f"is not a record: {keys.RECORD_STATUS!r} is {obj[keys.RECORD_STATUS]!r}, not "
                      f"{STATUS_OK!r} or {STATUS_FAILED!r}"), True
    if keys.RECORD_CHECKSUM in obj and obj[keys.RECORD_CHECKSUM] != record_checksum(obj):
        return None, "fails its checksum: the record was changed after it was written", True
    return obj, None, True


@dataclass
class _Scan:
    """What a store file holds, line by line (numbers count from 1, as an editor shows them)."""

    records: list[tuple[int, dict, bytes]] = field(default_factory=list)
    damaged: list[tuple[int, str, bytes]] = field(default_factory=list)
    torn: bytes = b""  # an unterminated last line that is no complete JSON value: an unfinished write
    torn_line: int = 0
    unterminated_record: bool = False  # the last record lacks its line end (e.g. removed by an editor)

    @property
    def n_unchecked(self) -> int:
        return sum(keys.RECORD_CHECKSUM not in rec for _, rec, _ in self.records)


def _scan(data: bytes) -> _Scan:
    scan = _Scan()
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1]
    for n, line in enumerate(lines, start=1):
        rec, problem, _ = _parse_line(line)
        if rec is None:
            scan.damaged.append((n, problem, line))
        else:
            scan.records.append((n, rec, line))
    tail = data[end:]
    if tail:
        n = len(lines) + 1
        rec, problem, is_json = _parse_line(tail)
        if rec is not None:
            scan.records.append((n, rec, tail))
            scan.unterminated_record = True
        elif is_json:  # a prefix of a written record is never a whole JSON value: this is damage, not a crash
            scan.damaged.append((n, problem, tail))
        else:
            scan.torn, scan.torn_line = tail, n
    return scan


def _fsync_append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class RecordStore:
    """A JSON Lines file of labelling records.

    Opening checks every line. A line that is not a sound record (not JSON, a JSON list, no ``key`` or
    ``status``, a failed checksum) is damage and is named with its line number. A blank line is damage too:
    the store writes every record as exactly one non-empty line, so a blank line means the file was changed
    by something else, and whatever changed it may have changed more. Records written before records carried
    checksums (no ``checksum`` field) are already-computed data: they load, with one :class:`StoreWarning`
    giving their count.

    What to do with a damaged store: ``RecordStore.repair(path)`` moves every damaged line to
    ``<store>.damaged`` (nothing is deleted) and the next campaign run computes those tasks again; or open it
    with ``on_damage="skip"`` to use the sound records and leave the file as it is; or fix the lines by hand.

    Args:
        path: The ``.jsonl`` file.
        mode: ``"a"`` (append, what campaigns use): a missing file is created, and an unfinished last line
            (a write cut by a crash) is moved to ``<store>.damaged`` and cut off, with a :class:`StoreWarning`.
            ``"r"`` (read only, to read or export): the file is never created, truncated or written; an
            unfinished last line is left in place and ignored.
        on_damage: ``"raise"`` (a :class:`ValueError` naming every damaged line) or ``"skip"`` (load the sound
            records, warn, and list the damaged lines in :attr:`damaged_lines`; the file keeps them).

    Attributes:
        records: Every complete record in file order.
        repaired_bytes: Bytes of an unfinished last line cut off on opening (0 normally; always 0 in mode "r").
        damaged_lines: ``(line number, what is wrong)`` of each damaged line skipped with ``on_damage="skip"``.
        n_unchecked: Records without a checksum (written before records carried one).

    Raises:
        ValueError: for an unknown ``mode`` or ``on_damage``, or a damaged store with ``on_damage="raise"``.
        FileNotFoundError: for a missing file in mode ``"r"``.
    """

    def __init__(self, path: str | Path, mode: str = "a", on_damage: str = "raise"):
        if mode not in ("a", "r"):
            raise ValueError(f"mode must be 'a' (append) or 'r' (read only), got {mode!r}.")
        if on_damage not in ("raise", "skip"):
            raise ValueError(f"on_damage must be 'raise' or 'skip', got {on_damage!r}.")
        self.path = Path(path)
        self.mode = mode
        self.damaged_path = self.path.with_name(self.path.name + DAMAGED_SUFFIX)
        self.repaired_bytes = 0
        self.records: list[dict] = []
        self._by_key: dict[str, dict] = {}
        exists = self.path.exists()
        if mode == "r" and not exists:
            raise FileNotFoundError(f"Record store {self.path} does not exist (opened read only, so not created).")
        scan = _scan(self.path.read_bytes()) if exists else _Scan()
        self.damaged_lines = [(n, problem) for n, problem, _ in scan.damaged]
        self.n_unchecked = scan.n_unchecked
        if scan.damaged:
            if on_damage == "raise":
                raise ValueError(self._damage_message(scan, "The file was not changed."))
            warnings.warn(self._damage_message(scan, "They were skipped and left in the file."), StoreWarning,
                          stacklevel=2)
        if self.n_unchecked:
            warnings.warn(f"{self.path}: {self.n_unchecked} record(s) carry no checksum (written before records "
                          "had one); they are loaded, but damage to them cannot be detected.", StoreWarning,
                          stacklevel=2)
        if mode == "a":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not exists:
                self.path.touch()
            elif scan.torn:
                self._cut_torn(scan)
            elif scan.unterminated_record:
                _fsync_append(self.path, b"\n")
        elif scan.torn:
            warnings.warn(f"{self.path}: line {scan.torn_line} is unfinished ({len(scan.torn)} bytes, a write in "
                          "progress or cut by a crash); it is ignored and left in the file.", StoreWarning,
                          stacklevel=2)
        for _, rec, _ in scan.records:
            self._index(rec)

    def _damage_message(self, scan: _Scan, outcome: str) -> str:
        shown = "; ".join(f"line {n} {problem}" for n, problem, _ in scan.damaged[:10])
        more = f"; and {len(scan.damaged) - 10} more" if len(scan.damaged) > 10 else ""
        return (
            f"Record store {self.path} is damaged: {len(scan.damaged)} line(s) are not sound records: "
            f"{shown}{more}. {outcome} To recover: RecordStore.repair({str(self.path)!r}) moves the damaged "
            f"lines to {str(self.damaged_path)!r} (nothing is deleted) and their tasks are computed again on the "
            "next run; or RecordStore(path, on_damage='skip') reads the sound records and leaves the file as it "
            "is; or fix or remove those lines by hand."
        )

    def _cut_torn(self, scan: _Scan) -> None:
        """Keep the unfinished bytes in ``<store>.damaged``, then cut them off the store (both fsync-ed)."""
        _fsync_append(self.damaged_path, scan.torn + b"\n")
        size = self.path.stat().st_size
        with open(self.path, "r+b") as fh:
            fh.truncate(size - len(scan.torn))
            fh.flush()
            os.fsync(fh.fileno())
        self.repaired_bytes = len(scan.torn)
        warnings.warn(f"{self.path}: cut an unfinished last line (line {scan.torn_line}, {len(scan.torn)} bytes, "
                      f"a write interrupted by a crash); its bytes are kept in {self.damaged_path}.", StoreWarning,
                      stacklevel=3)

    @classmethod
    def repair(cls, path: str | Path) -> list[tuple[int, str]]:
        """Move every damaged line of a store, and an unfinished last line, to ``<store>.damaged``.

        The damaged lines are appended to ``<store>.damaged`` exactly as they were (and ``fsync``-ed) before
        the store is rewritten, atomically, with its sound lines unchanged byte for byte; a crash at any moment
        loses nothing. Do not repair a store that a running campaign is writing to.

        Args:
            path: The ``.jsonl`` store.

        Returns:
            ``(line number, what was wrong)`` of each line moved; empty (and nothing written) if none was.

        Raises:
            FileNotFoundError: if the store does not exist.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"Record store {path} does not exist; there is nothing to repair.")
        scan = _scan(path.read_bytes())
        moved = [(n, problem, line) for n, problem, line in scan.damaged]
        if scan.torn:
            moved.append((scan.torn_line, "is unfinished (a write interrupted by a crash)", scan.torn))
        if not moved and not scan.unterminated_record:
            return []
        moved.sort()
        if moved:
            _fsync_append(path.with_name(path.name + DAMAGED_SUFFIX), b"".join(line + b"\n" for _, _, line in moved))
        tmp = path.with_name(path.name + ".repairing")
        with open(tmp, "wb") as fh:
            fh.write(b"".join(line + b"\n" for _, _, line in scan.records))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return [(n, problem) for n, problem, _ in moved]

    def _index(self, rec: dict) -> None:
        self.records.append(rec)
        prev = self._by_key.get(rec[keys.RECORD_KEY])
        if prev is None or (prev[keys.RECORD_STATUS] != STATUS_OK and rec[keys.RECORD_STATUS] == STATUS_OK):
            self._by_key[rec[keys.RECORD_KEY]] = rec

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
        return rec is not None and (rec[keys.RECORD_STATUS] == STATUS_OK or not retry_failed)

    def append(self, record: dict) -> dict:
        """Write one record durably (write, flush, fsync) with its checksum, and index it.

        A ``checksum`` field already in ``record`` is replaced by the checksum of its content.

        Args:
            record: A JSON-serialisable dict with a ``key`` and a ``status`` of "ok" or "failed".

        Returns:
            The record as stored (a JSON round trip of ``record``, with its ``checksum``).

        Raises:
            ValueError: if the record lacks a key or status, or is not JSON-serialisable.
            io.UnsupportedOperation: if the store was opened read only.
        """
        if self.mode != "a":
            raise io.UnsupportedOperation(f"Record store {self.path} was opened read only (mode='r'); open it with "
                                          "mode='a' to append.")
        if not isinstance(record, dict) or keys.RECORD_KEY not in record \
                or record.get(keys.RECORD_STATUS) not in (STATUS_OK, STATUS_FAILED):
            raise ValueError("A record needs a 'key' and a 'status' of 'ok' or 'failed'.")
        try:
            stored = json.loads(json.dumps(record, allow_nan=True))
        except (TypeError, ValueError) as err:
            raise ValueError(f"Record {record[keys.RECORD_KEY]!r} is not JSON-serialisable: {err}") from err
        stored[keys.RECORD_CHECKSUM] = record_checksum(stored)
        _fsync_append(self.path, (json.dumps(stored, sort_keys=True, allow_nan=True) + "\n").encode())
        self._index(stored)
        return stored

    def successes(self) -> Iterator[dict]:
        """Successful records, one per key, in first-seen order."""
        return (r for r in self._by_key.values() if r[keys.RECORD_STATUS] == STATUS_OK)

    def failures(self) -> list[dict]:
        """Keys whose only records are failures, with their reasons."""
        return [r for r in self._by_key.values() if r[keys.RECORD_STATUS] == STATUS_FAILED]

    def to_images(self) -> list[Atoms]:
        """Merge successful records by geometry into structures with every level side by side.

        Returns:
            One :class:`ase.Atoms` per distinct geometry, in first-seen order, with ``energy_<slug>``,
            ``forces_<slug>`` and ``<slug>_<provenance field>`` keys (see :mod:`mlipviz.keys`).
        """
        images: dict[str, Atoms] = {}
        for rec in self.successes():
            gkey = rec[keys.RECORD_GEOMETRY_KEY]
            if gkey not in images:
                images[gkey] = Atoms(numbers=rec[keys.RECORD_NUMBERS], positions=rec[keys.RECORD_POSITIONS])
                images[gkey].info.update(rec.get(keys.RECORD_INFO, {}))
            atoms, slug = images[gkey], rec[keys.RECORD_SLUG]
            atoms.info[keys.energy_key(slug)] = rec[keys.RECORD_ENERGY]
            if rec.get(keys.RECORD_FORCES) is not None:
                atoms.arrays[keys.forces_key(slug)] = np.asarray(rec[keys.RECORD_FORCES], dtype=float)
            for field_name, value in rec[keys.RECORD_PROVENANCE].items():
                atoms.info[keys.provenance_key(slug, field_name)] = value
        return list(images.values())
