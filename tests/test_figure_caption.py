"""A figure's caption sits below its axes, labels included, and inside the figure."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from analysis.frames import figure, save


@pytest.mark.parametrize("panels", [1, 2])
@pytest.mark.parametrize("words", [5, 12, 30])
def test_the_caption_covers_no_axis_and_stays_inside(tmp_path: Path, panels: int,
                                                     words: int) -> None:
    fig, axes = figure(panels=panels)
    for ax in axes:
        ax.plot([1, 2, 4, 8], [300, 250, 180, 140])
        ax.set_xlabel("gateways |G|")
    caption = " ".join(f"word{i}, parallel/serial 5.49, A/A 1.02;" for i in range(words))
    path = save(fig, tmp_path / "figure.png", caption)
    assert path.stat().st_size > 0
    renderer = FigureCanvasAgg(fig).get_renderer()  # the closed figure, drawn as saved
    text = fig.texts[-1].get_window_extent(renderer)
    width, height = fig.bbox.width, fig.bbox.height
    assert 0 <= text.x0 and text.x1 <= width and 0 <= text.y0, "the caption is in the figure"
    for ax in axes:
        assert ax.get_tightbbox(renderer).y0 >= text.y1, "no caption line covers the axes"
    assert text.y1 < height / 2
