"""Labelling campaigns: resumability, crash safety under SIGKILL, failures as data, the FD guard."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from ase import Atoms

from mlipviz import keys
from mlipviz.reference import run_pyscf
from mlipviz.reference.campaign import FDMismatchError, compute_record, run_campaign
from mlipviz.reference.levels import get_level
from mlipviz.reference.store import RecordStore, StoreWarning, task_key

from conftest import rattled_waters  # tests/ is on sys.path under pytest

CHEAP = "HF/sto-3g"


def test_campaign_labels_resumes_and_exports(tmp_path, client):
    images = rattled_waters(4)
    store_path = tmp_path / "s.jsonl"
    first = run_campaign(images[:3], [CHEAP, "B3LYP/sto-3g"], store_path, client=client, progress=False)
    assert (first.n_ok, first.n_skipped) == (6, 0)
    again = run_campaign(images, [CHEAP, "B3LYP/sto-3g"], store_path, client=client, progress=False)
    assert (again.n_ok, again.n_skipped) == (2, 6)  # only the new geometry is computed
    store = RecordStore(store_path)
    assert len(store.records) == len(store) == 8
    exported = store.to_images()
    assert len(exported) == 4
    slug = get_level(CHEAP).slug
    direct = run_pyscf(images[2], CHEAP)
    assert exported[2].info[keys.energy_key(slug)] == pytest.approx(direct.energy, abs=1e-6)
    np.testing.assert_allclose(exported[2].arrays[keys.forces_key(slug)], direct.forces, atol=1e-5)
    prov = {k: v for k, v in exported[2].info.items() if k.startswith(slug)}
    for field in (*keys.PROVENANCE_FIELDS, keys.HOST, keys.SCF_CYCLES, keys.THREADS, keys.FORCES_METHOD):
        assert keys.provenance_key(slug, field) in prov, field
    # only the first task of each run is checked against finite differences (fd_check_fraction=0)
    assert exported[0].info[keys.provenance_key(slug, keys.FD_CHECK_PASSED)] is True
    assert exported[0].info[keys.provenance_key(slug, keys.FD_CHECK_MAX_ERROR)] < 1e-3
    assert keys.provenance_key(slug, keys.FD_CHECK_PASSED) not in prov


def test_bad_input_stops_before_any_work(tmp_path, client):
    bad = rattled_waters(3)
    bad[2].positions[1] = bad[2].positions[0] + 0.1
    with pytest.raises(ValueError, match="geometry 2 has overlapping atoms"):
        run_campaign(bad, CHEAP, tmp_path / "s.jsonl", client=client, progress=False)
    with pytest.raises(ValueError, match="geometry 0 at HF/sto-3g.*odd count"):
        run_campaign([Atoms("OH", positions=[(0, 0, 0), (0, 0, 0.97)])], CHEAP, tmp_path / "s.jsonl", client=client)
    with pytest.raises(ValueError, match="no functions for element"):
        run_campaign([Atoms("Xe")], "HF/cc-pVDZ", tmp_path / "s.jsonl", client=client)
    assert RecordStore(tmp_path / "s.jsonl").records == []


def _limit_scf_cycles(monkeypatch, also_fallback: bool):
    """Make the default SCF settings (and optionally the fallback too) stop after one cycle."""
    import mlipviz.reference.campaign.worker as worker

    real = worker.run_pyscf

    def limited(atoms, level, forces=True, scf_options=None):
        if scf_options is None or also_fallback:
            scf_options = {**(scf_options or {}), "max_cycle": 1}
        return real(atoms, level, forces=forces, scf_options=scf_options)

    monkeypatch.setattr(worker, "run_pyscf", limited)


def test_non_convergence_is_retried_with_fallback_settings(monkeypatch):
    _limit_scf_cycles(monkeypatch, also_fallback=False)
    atoms = rattled_waters(1)[0]
    rec = compute_record(atoms.numbers.tolist(), atoms.positions.tolist(), {}, get_level(CHEAP).as_dict(), True)
    assert rec["status"] == "ok" and rec["provenance"]["retried"] is True
    assert rec["energy"] == pytest.approx(run_pyscf(atoms, CHEAP, forces=False).energy, abs=1e-6)


def test_persistent_non_convergence_is_stored_as_a_failure_and_the_campaign_goes_on(tmp_path, client, monkeypatch):
    _limit_scf_cycles(monkeypatch, also_fallback=True)
    report = run_campaign(rattled_waters(2), CHEAP, tmp_path / "s.jsonl", client=client, progress=False)
    assert report.n_failed == 2 and report.n_ok == 0
    reason = report.failures[0][1]
    assert "default settings: not converged" in reason and "fallback settings: not converged" in reason
    assert len(RecordStore(tmp_path / "s.jsonl").failures()) == 2


def test_fd_guard_stops_the_campaign_and_keeps_the_record(tmp_path, client, monkeypatch):
    """Corrupt the analytic gradient on purpose: the guard must catch it on the first record."""
    import mlipviz.reference.campaign.worker as worker

    real = worker.run_pyscf

    def wrong_gradient(atoms, level, forces=True, scf_options=None):
        res = real(atoms, level, forces=forces, scf_options=scf_options)
        if res.forces is not None:
            res.forces = res.forces * 1.01
        return res

    monkeypatch.setattr(worker, "run_pyscf", wrong_gradient)
    store_path = tmp_path / "s.jsonl"
    with pytest.raises(FDMismatchError, match="differ from finite differences"):
        run_campaign(rattled_waters(3), CHEAP, store_path, client=client, progress=False)
    recs = RecordStore(store_path).records
    assert any(r["provenance"].get("fd_check_passed") is False for r in recs)


def test_store_cuts_an_unfinished_last_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"key": "a", "status": "ok"}) + "\n" + '{"key": "b", "sta')
    with pytest.warns(StoreWarning) as caught:
        store = RecordStore(path)
    messages = [str(w.message) for w in caught]
    assert any(re.search(r"cut an unfinished last line .*17 bytes", m) for m in messages), messages
    assert any("1 record(s) carry no checksum" in m for m in messages)  # "a" predates checksums: kept, counted
    assert [r["key"] for r in store.records] == ["a"] and store.repaired_bytes == 17
    store.append({"key": "c", "status": "failed", "reason": "x"})
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["a", "c"]


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    """Kill a real campaign process (and its Dask workers) with SIGKILL several times, then finish it."""
    from mlipviz.dataset import write_images

    n = 60
    geoms = tmp_path / "geoms.extxyz"
    write_images(geoms, rattled_waters(n, seed=3))
    store_path = tmp_path / "store.jsonl"
    cmd = [sys.executable, "-m", "mlipviz.reference.campaign", str(geoms), "--level", CHEAP,
           "--store", str(store_path), "--workers", "1", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = np.random.default_rng(11)
    kills, seen = 0, {}
    for _ in range(6):
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(2.0, 7.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        complete = [json.loads(line) for line in store_path.read_text().splitlines() if line.endswith("}")] \
            if store_path.exists() else []
        for rec in complete:  # every record seen before survives, unchanged
            seen.setdefault(rec["key"], rec["energy"])
        current = RecordStore(store_path)
        assert all(current.get(k)["energy"] == e for k, e in seen.items())
    assert kills >= 2, "the campaign finished before it could be killed; make it longer"
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-2000:]
    store = RecordStore(store_path)
    keys_in_file = [r["key"] for r in store.records]
    assert len(keys_in_file) == len(set(keys_in_file)) == n  # nothing lost, nothing duplicated
    assert set(seen) <= set(keys_in_file)
    a = rattled_waters(n, seed=3)[17]
    assert store.get(task_key(a, CHEAP))["energy"] == pytest.approx(run_pyscf(a, CHEAP, forces=False).energy, abs=1e-6)


def test_first_record_guard_can_be_switched_off_for_timing(tmp_path, client):
    report = run_campaign(rattled_waters(2, seed=9), CHEAP, tmp_path / "s.jsonl", client=client,
                          fd_check_first=False, progress=False)
    assert report.n_fd_checked == 0
    assert all(keys.FD_CHECK_PASSED not in r["provenance"] for r in RecordStore(tmp_path / "s.jsonl").records)


def _worker_environment():
    from threadpoolctl import threadpool_info

    blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas" and p["threading_layer"] != "disabled"]
    return {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")}, blas


def test_local_cluster_sets_threads_and_leaves_this_process_alone(tmp_path, monkeypatch):
    from dask.distributed import Client

    from mlipviz.reference.campaign import local_cluster

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # as an earlier default Dask cluster leaves it
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with local_cluster(1, 2) as cluster, Client(cluster) as c:
        env, blas = c.submit(_worker_environment).result()
        assert env == {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MALLOC_TRIM_THRESHOLD_": None}
        assert blas and set(blas) == {2}
        # tasks set their thread count themselves, so any cluster (here one started with 2) obeys the campaign
        run_campaign(rattled_waters(1), CHEAP, tmp_path / "s.jsonl", client=c, threads_per_worker=1,
                     fd_check_first=False, progress=False)
    prov = RecordStore(tmp_path / "s.jsonl").records[0]["provenance"]
    assert (prov[keys.THREADS], prov[keys.BLAS_THREADS]) == (1, 1)
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536" and "OMP_NUM_THREADS" not in os.environ
    with pytest.raises(ValueError, match="n_workers must be a positive integer, got 0"):
        local_cluster(0, 1)
    with pytest.raises(ValueError, match="threads_per_worker must be a positive integer"):
        run_campaign(rattled_waters(1), CHEAP, tmp_path / "t.jsonl", threads_per_worker=0, progress=False)


def test_dispersion_level_without_its_package_is_refused_before_any_work(tmp_path, client, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyscf.dispersion", None)  # as if pyscf-dispersion were not installed
    with pytest.raises(ValueError, match=r"B3LYP-D3BJ/sto-3g needs .*pip install pyscf-dispersion"):
        run_campaign(rattled_waters(2), ["HF/sto-3g", "B3LYP-D3BJ/sto-3g"], tmp_path / "s.jsonl", client=client)
    assert RecordStore(tmp_path / "s.jsonl").records == []


def test_a_registered_dft_level_runs_on_fresh_worker_processes(tmp_path):
    """Worker processes do not share the registry: the record carries the xc string and registers it there."""
    from dask.distributed import Client

    from mlipviz.geometry import geometry_payload, stable_hash
    from mlipviz.reference import register_dft_level
    from mlipviz.reference.campaign import local_cluster
    from mlipviz.reference.store import level_record

    register_dft_level("BLYP-campaign-check", xc="blyp")
    level = "BLYP-campaign-check/sto-3g"
    images = rattled_waters(2, seed=9)
    with local_cluster(1) as cluster, Client(cluster) as process_client:
        report = run_campaign(images, level, tmp_path / "s.jsonl", forces=False, client=process_client, progress=False)
    assert (report.n_ok, report.n_failed) == (2, 0), report.failures
    rec = RecordStore(tmp_path / "s.jsonl", mode="r").get(task_key(images[1], level, False))
    assert rec[keys.RECORD_LEVEL]["xc"] == "blyp" and rec[keys.RECORD_PROVENANCE][keys.XC] == "blyp"
    assert rec[keys.RECORD_ENERGY] == pytest.approx(run_pyscf(images[1], level, forces=False).energy, abs=1e-6)
    # the key hashes the functional, not only the name a user chose for it
    lv_dict = {k: v for k, v in level_record(level).items() if k not in ("xc", "disp")}
    assert task_key(images[1], level, False) != stable_hash({**geometry_payload(images[1]), "level": lv_dict,
                                                             "forces": False})
