"""mlipviz.views: the B-factor scaling that carries per-atom values to nglview, and the widget."""

import io

import numpy as np
import pytest
from ase import Atoms
from ase.io import read, write

from mlipviz.views import colour_legend, scale_to_bfactor, view_structure


def test_large_values_fit_the_pdb_column():
    values = np.array([-15000.0, 2.5, 12345.6])
    scaled, (low, high) = scale_to_bfactor(values)
    assert (low, high) == (-15000.0, 15000.0)
    assert np.abs(scaled).max() <= 99.0
    atoms = Atoms("OH2", positions=np.eye(3) * 2)
    atoms.set_array("bfactor", scaled)
    buf = io.StringIO()
    write(buf, atoms, format="proteindatabank")
    back = read(io.StringIO(buf.getvalue()), format="proteindatabank")
    np.testing.assert_allclose(back.get_array("bfactor"), scaled, atol=0.01)  # survives the PDB round trip
    true_again = low + (back.get_array("bfactor") + 99) / 198 * (high - low)
    np.testing.assert_allclose(true_again, values, atol=0.01 * (high - low) / 198)  # the column's resolution


def test_one_signed_values_use_their_range():
    scaled, (low, high) = scale_to_bfactor([1.0, 2.0, 3.0])
    assert (low, high) == (1.0, 3.0)
    np.testing.assert_allclose(scaled, [-99, 0, 99])


def test_bad_values_are_named(water_reference):
    with pytest.raises(ValueError, match="NaN or infinity at atom index"):
        scale_to_bfactor([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="values has 2 entries but the structure has 3 atoms"):
        view_structure(water_reference, values=[1.0, 2.0])


def test_widget_holds_view_and_legend(water_reference):
    box = view_structure(water_reference, values=[0.1, -0.2, 0.3], label="attribution")
    assert len(box.children) == 2
    png = box.children[1].value
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == colour_legend(-0.3, 0.3, "attribution", "eV")
    traj = [water_reference.copy() for _ in range(3)]
    assert view_structure(traj).view.max_frame == 2
