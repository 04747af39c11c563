"""mlipviz.views.player: the 3D view, the slider and the plot markers follow one frame index."""

import numpy as np
import pytest
from ase.build import molecule

from mlipviz.views.ngl import face_camera
from mlipviz.views.player import md_player


@pytest.fixture()
def frames():
    out = []
    for k in range(6):
        a = molecule("H2O")
        a.positions[1] *= 1.0 + 0.02 * k  # the first O–H bond stretches frame by frame
        out.append(a)
    return out


def test_view_slider_and_markers_stay_on_one_frame(frames):
    t = 0.5 * np.arange(6)
    player = md_player(frames, time_fs=t, energy_eV=np.linspace(0, 1e-3, 6), temperature_K=np.full(6, 300.0),
                       bonds=[(0, 1)])
    assert list(player.series) == ["ΔE", "T", "O0–H1"]
    np.testing.assert_allclose(player.series["O0–H1"][0], [f.get_distance(0, 1) for f in frames])
    player.view.frame = 3  # the play button moves the view
    assert player.frame == 3 and player.slider.value == 3
    assert all(m.get_xdata()[0] == pytest.approx(1.5) for m in player.markers)
    player.slider.value = 5  # the slider moves the view
    assert player.view.frame == 5 and all(m.get_xdata()[0] == pytest.approx(2.5) for m in player.markers)
    with pytest.raises(IndexError, match="frame 6"):
        player.show_frame(6)


def test_bad_series_are_refused_by_name(frames):
    with pytest.raises(ValueError, match="temperature|'T'"):
        md_player(frames, temperature_K=np.zeros(5))
    with pytest.raises(ValueError, match=r"bond \(0, 7\)"):
        md_player(frames, bonds=[(0, 7)])
    with pytest.raises(ValueError, match="nothing to plot"):
        md_player(frames)
    with pytest.raises(ValueError, match="time_fs"):
        md_player(frames, time_fs=[0, 1], energy_eV=np.zeros(6))


def _shown(view):
    """What the view's replay archive draws: the loaded PDB's atoms (positions and B-factors) and its colour scale."""
    import io

    from ase.io import read

    loads = [m for m in view._ngl_msg_archive if m["methodName"] == "loadFile"]
    assert len(loads) == 1, "the archive draws one structure"
    atoms = read(io.StringIO(loads[0]["args"][0]["data"]), format="proteindatabank")
    rep = next(m for m in view._ngl_msg_archive if m["methodName"] == "addRepresentation")
    assert rep["component_index"] == 0 and rep["kwargs"]["colorScheme"] == "bfactor"
    return atoms, rep["kwargs"]


def _colours(bfactor, rep):
    """NGL's colour of each B-factor: the colour stops sent with the representation, interpolated in RGB."""
    from matplotlib.colors import to_rgb

    stops = np.array([to_rgb(c) for c in rep["colorScale"]])
    lo, hi = rep["colorDomain"]
    t = (np.asarray(bfactor) - lo) / (hi - lo) * (len(stops) - 1)
    return np.stack([np.interp(t, np.arange(len(stops)), stops[:, c]) for c in range(3)], axis=1)


@pytest.mark.parametrize("signed", [False, True])
def test_atom_colours_follow_the_frame_on_one_scale(frames, signed):
    import matplotlib
    from matplotlib.colors import Normalize

    from mlipviz.views import colour_legend, scale_to_bfactor
    from mlipviz.views.ngl import COLOR_SCALE, SEQUENTIAL_SCALE

    rng = np.random.default_rng(3)
    values = rng.uniform(0.2, 1.0, (6, 3))
    values[4, 2] = 2.5  # the largest value of all frames sits in frame 4 only
    if signed:
        values[1, 0] = -0.7
    player = md_player(frames, energy_eV=np.zeros(6), atom_values=values, atom_label="|F|", atom_unit="eV/Å")
    # One scale over all frames, by hand: signed values span ±max|v| (diverging), one-signed ones min..max.
    low, high = (-2.5, 2.5) if signed else (values.min(), values.max())
    cmap = COLOR_SCALE if signed else SEQUENTIAL_SCALE
    assert player.value_range == pytest.approx((low, high), abs=0)
    assert player.legend.value == colour_legend(low, high, "|F|", "eV/Å", cmap=cmap)
    faced = face_camera(frames)
    for k, move in [(3, "slider"), (5, "view"), (0, "show_frame"), (4, "slider")]:
        if move == "slider":
            player.slider.value = k
        elif move == "view":  # the play button
            player.view.frame = k
        else:
            player.show_frame(k)
        assert player.frame == player.view.frame == player.slider.value == k
        atoms, rep = _shown(player.view)
        bfactor = atoms.get_array("bfactor")
        expected, ends = scale_to_bfactor(values[k], value_range=(low, high))
        assert ends == (low, high)
        np.testing.assert_allclose(bfactor, expected, atol=0.006)  # the PDB column keeps 2 decimals
        np.testing.assert_allclose(bfactor, -99 + 198 * (values[k] - low) / (high - low), atol=0.006)
        legend_colours = matplotlib.colormaps[cmap](Normalize(low, high)(values[k]))[:, :3]
        np.testing.assert_allclose(_colours(bfactor, rep), legend_colours, atol=0.03)  # view and legend agree
        np.testing.assert_allclose(atoms.positions, faced[k].positions, atol=1e-3)  # frame k's atoms, as faced
    assert len(player.view._ngl_component_ids) == 1 and player.view.max_frame == 5


def test_a_new_frame_is_drawn_before_the_old_one_goes_and_keeps_the_camera(frames):
    player = md_player(frames, energy_eV=np.zeros(6), atom_values=np.arange(18.0).reshape(6, 3))
    sent = len(player.view._callbacks_before_loaded)
    player.slider.value = 2
    names = [cb._ngl_msg["methodName"] for cb in player.view._callbacks_before_loaded[sent:]]
    assert names.index("loadFile") < names.index("addRepresentation") < names.index("removeComponent")
    assert "autoView" not in names and "setParameters" not in names  # the user's camera stays
    archive = [m["methodName"] for m in player.view._ngl_msg_archive]
    assert archive[-1] == "autoView" and "removeComponent" not in archive  # a replayed page is still fitted


def test_without_atom_values_the_view_is_drawn_once(frames):
    player = md_player(frames, energy_eV=np.zeros(6))
    sent = len(player.view._callbacks_before_loaded)
    player.slider.value = 4
    assert player.view.frame == 4 and len(player.view._callbacks_before_loaded) == sent  # nglview moves the atoms
    assert player.value_range is None and player.legend is None


@pytest.mark.parametrize(
    ("atom_values", "match"),
    [(np.zeros((5, 3)), r"atom_values has shape \(5, 3\) but the structure has 6 frame\(s\) of 3 atoms; give \(6, 3\)"),
     (np.zeros((6, 4)), r"atom_values has shape \(6, 4\)"),
     (np.zeros(3), r"atom_values has shape \(3,\)"),
     (np.where(np.arange(18).reshape(6, 3) == 7, np.nan, 1.0), r"atom_values\[2, 1\] is nan"),
     (np.where(np.arange(18).reshape(6, 3) == 4, np.inf, 1.0), r"atom_values\[1, 1\] is inf"),
     ([[1.0, 2.0], [3.0]], "atom_values must be numbers")],
)
def test_bad_atom_values_are_refused_by_name(frames, atom_values, match):
    with pytest.raises(ValueError, match=match):
        md_player(frames, energy_eV=np.zeros(6), atom_values=atom_values)
