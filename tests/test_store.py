"""The record store: damage named with line numbers, checksums, read-only opening, unfinished writes."""

import hashlib
import io
import json
import os
import time
import warnings

import pytest

from mlipviz import keys
from mlipviz.reference.store import RecordStore, StoreWarning, record_checksum


def _record(key, energy=-75.0, status="ok"):
    return {"key": key, "status": status, "energy": energy, "provenance": {"level": "HF/sto-3g"}}


def _store_with(path, n=3):
    store = RecordStore(path)
    for i in range(n):
        store.append(_record(f"k{i}", energy=-75.0 - i / 7))
    return path.read_bytes().splitlines(keepends=True)


def _write(path, lines):
    path.write_bytes(b"".join(lines))


def test_append_writes_a_sha256_checksum_of_the_canonical_record(tmp_path):
    path = tmp_path / "s.jsonl"
    RecordStore(path).append(_record("a", energy=-74.9627))
    (line,) = path.read_text().splitlines()
    rec = json.loads(line)
    body = {k: v for k, v in rec.items() if k != keys.RECORD_CHECKSUM}
    independent = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert rec[keys.RECORD_CHECKSUM] == independent == record_checksum(rec)
    assert RecordStore(path, mode="r").get("a")["energy"] == -74.9627


def test_one_changed_digit_inside_a_valid_record_is_named_with_its_line(tmp_path):
    path = tmp_path / "s.jsonl"
    lines = _store_with(path)
    assert b"-75.142857" in lines[1]
    lines[1] = lines[1].replace(b"-75.142857", b"-75.142867")  # still valid JSON, still a record
    json.loads(lines[1])
    _write(path, lines)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"s\.jsonl is damaged.*line 2 fails its checksum.*RecordStore\.repair"):
        RecordStore(path)
    assert path.read_bytes() == before  # the file was not changed
    with pytest.warns(StoreWarning, match="line 2 fails its checksum"):
        skipped = RecordStore(path, mode="r", on_damage="skip")
    assert [r["key"] for r in skipped.records] == ["k0", "k2"] and skipped.damaged_lines[0][0] == 2


@pytest.mark.parametrize("bad, problem", [
    (b"{}\n", r"line 2 is not a record: no 'key' and no 'status'"),
    (b'{"key": "x"}\n', r"line 2 is not a record: no 'status'"),
    (b"[1, 2]\n", r"line 2 is a JSON list, not a record"),
    (b'{"key": "x", "status": "done"}\n', r"line 2 is not a record: 'status' is 'done'"),
    (b'{"key": "x", "sta\n', r"line 2 is not JSON"),
    (b"\n", r"line 2 is blank"),
])
def test_a_damaged_middle_line_is_a_clear_error_naming_file_and_line(tmp_path, bad, problem):
    path = tmp_path / "s.jsonl"
    lines = _store_with(path)
    _write(path, [lines[0], bad, *lines[1:]])
    with pytest.raises(ValueError, match=r"s\.jsonl is damaged: 1 line\(s\) .*" + problem):
        RecordStore(path)
    with pytest.raises(ValueError, match=problem):
        RecordStore(path, mode="r")


def test_repair_moves_damaged_lines_aside_and_the_store_opens_again(tmp_path):
    path = tmp_path / "s.jsonl"
    lines = _store_with(path, n=4)
    edited = lines[2].replace(b"-75.285714", b"-75.285715")
    _write(path, [lines[0], b"[]\n", lines[1], edited, lines[3], b'{"key": "k9", "st'])
    moved = RecordStore.repair(path)
    assert [n for n, _ in moved] == [2, 4, 6]
    assert path.read_bytes() == lines[0] + lines[1] + lines[3]  # sound lines kept byte for byte
    damaged = (tmp_path / "s.jsonl.damaged").read_bytes()
    assert damaged == b"[]\n" + edited + b'{"key": "k9", "st\n'  # nothing deleted
    store = RecordStore(path)
    assert [r["key"] for r in store.records] == ["k0", "k1", "k3"] and not store.done("k2")
    assert RecordStore.repair(path) == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RecordStore.repair(tmp_path / "missing.jsonl")


def test_records_without_checksum_still_load_with_one_warning_giving_their_count(tmp_path):
    path = tmp_path / "s.jsonl"
    old = [json.dumps(_record(k)) + "\n" for k in ("a", "b")]
    path.write_text("".join(old))
    with pytest.warns(StoreWarning, match=r"2 record\(s\) carry no checksum") as caught:
        store = RecordStore(path)
    assert len([w for w in caught if "checksum" in str(w.message)]) == 1
    assert store.n_unchecked == 2 and store.done("a") and store.done("b")
    new = store.append(_record("c"))
    assert keys.RECORD_CHECKSUM in new and path.read_text().startswith("".join(old))


def test_read_only_open_leaves_a_torn_last_line_byte_for_byte(tmp_path):
    path = tmp_path / "s.jsonl"
    lines = _store_with(path, n=2)
    _write(path, [*lines, b'{"key": "k2", "status": "o'])
    past = time.time() - 3600
    os.utime(path, (past, past))
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    with pytest.warns(StoreWarning, match=r"line 3 is unfinished \(26 bytes.*left in the file"):
        store = RecordStore(path, mode="r")
    assert [r["key"] for r in store.records] == ["k0", "k1"] and store.repaired_bytes == 0
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert not (tmp_path / "s.jsonl.damaged").exists()
    with pytest.raises(io.UnsupportedOperation, match="opened read only"):
        store.append(_record("k3"))
    assert path.read_bytes() == before


def test_read_only_open_of_a_missing_store_creates_nothing(tmp_path):
    path = tmp_path / "sub" / "s.jsonl"
    with pytest.raises(FileNotFoundError, match=r"s\.jsonl does not exist"):
        RecordStore(path, mode="r")
    assert not path.parent.exists()
    with pytest.raises(ValueError, match="mode must be 'a' .* or 'r'.*got 'w'"):
        RecordStore(path, mode="w")
    with pytest.raises(ValueError, match="on_damage must be 'raise' or 'skip', got 'ignore'"):
        RecordStore(path, on_damage="ignore")


def test_append_mode_cuts_a_torn_last_line_says_so_and_keeps_its_bytes(tmp_path):
    path = tmp_path / "s.jsonl"
    lines = _store_with(path, n=2)
    torn = b'{"key": "k2", "status": "o'
    _write(path, [*lines, torn])
    with pytest.warns(StoreWarning, match=rf"s\.jsonl: cut an unfinished last line \(line 3, {len(torn)} bytes"):
        store = RecordStore(path)
    assert store.repaired_bytes == len(torn)
    assert path.read_bytes() == b"".join(lines)
    assert (tmp_path / "s.jsonl.damaged").read_bytes() == torn + b"\n"
    store.append(_record("k2"))
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["k0", "k1", "k2"]


def test_a_complete_last_record_without_line_end_is_kept_not_cut(tmp_path):
    """An editor may drop the final newline: that record is whole and must not be lost."""
    path = tmp_path / "s.jsonl"
    lines = _store_with(path, n=2)
    _write(path, [lines[0], lines[1].rstrip(b"\n")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store = RecordStore(path)
    assert [r["key"] for r in store.records] == ["k0", "k1"] and store.repaired_bytes == 0
    store.append(_record("k2"))
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["k0", "k1", "k2"]


def test_append_refuses_what_is_not_a_record(tmp_path):
    store = RecordStore(tmp_path / "s.jsonl")
    with pytest.raises(ValueError, match="needs a 'key' and a 'status'"):
        store.append({"key": "a", "status": "maybe"})
    with pytest.raises(ValueError, match="Record 'a' is not JSON-serialisable"):
        store.append({"key": "a", "status": "ok", "energy": object()})
    assert (tmp_path / "s.jsonl").read_bytes() == b""
