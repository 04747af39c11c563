"""Shared fixtures: small molecules built in code, and the embedded data."""

import os

import numpy as np
import pytest
from ase import Atoms

# Keep PySCF and torch on few threads so tests behave the same on 2-core CI machines.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def water_reference():
    """H2O as in PySCF's CCSD(T) test: O (0, 0, 0), H (0, ∓0.757, 0.587) Å."""
    return Atoms("OH2", positions=[(0.0, 0.0, 0.0), (0.0, -0.757, 0.587), (0.0, 0.757, 0.587)])


@pytest.fixture(scope="session")
def water_distorted():
    """An asymmetric water geometry, so every force component is non-trivial."""
    return Atoms("OH2", positions=[(0.02, -0.01, 0.0), (0.05, -0.80, 0.56), (-0.03, 0.72, 0.62)])


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(1234)


def central_differences(energy, atoms: Atoms, h: float = 1e-3) -> np.ndarray:
    """-dE/dx by central differences, (n_atoms, 3), in the energy unit per Å."""
    f = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for a in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, a] += h
            minus.positions[i, a] -= h
            f[i, a] = -(energy(plus) - energy(minus)) / (2 * h)
    return f


@pytest.fixture(scope="session")
def embedded_water():
    """The embedded CCSD(T)/B3LYP water dataset (part of the repository)."""
    from mlipviz.dataset import load_images, water_dataset_path

    return load_images(water_dataset_path())


@pytest.fixture(scope="session")
def embedded_model_dir():
    from mlipviz.dataset import water_model_dir

    return water_model_dir()


@pytest.fixture(scope="session")
def model_and_config(embedded_model_dir):
    """The shipped water model and its config, on the CPU."""
    from mlipviz.potential import load_model

    return load_model(embedded_model_dir, device="cpu")


@pytest.fixture(scope="session")
def calc(model_and_config):
    """An ASE calculator over the shipped water model, on the CPU."""
    from mlipviz.potential import MLIPCalculator

    model, config = model_and_config
    return MLIPCalculator(model, config, device="cpu")


@pytest.fixture(scope="session")
def recipe():
    """``data/build.py``, the recipe that rebuilds the embedded data (a script beside the data, not the library)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data" / "build.py"
    spec = importlib.util.spec_from_file_location("mlipviz_data_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rattled_waters(n, seed=0, scale=0.05):
    """``n`` waters with Gaussian noise (``scale`` Å) on every coordinate: cheap, distinct campaign geometries."""
    rng = np.random.default_rng(seed)
    base = np.array([(0.0, 0.0, 0.0), (0.0, -0.757, 0.587), (0.0, 0.757, 0.587)])
    return [Atoms("OH2", positions=base + rng.normal(0, scale, base.shape)) for _ in range(n)]


@pytest.fixture(scope="module")
def client():
    """An in-process Dask client (one thread), so monkeypatched functions reach the tasks."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        with Client(cluster) as c:
            yield c
