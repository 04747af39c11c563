"""mlipviz.views.player: the 3D view, the slider and the plot markers follow one frame index."""

import numpy as np
import pytest
from ase.build import molecule

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
