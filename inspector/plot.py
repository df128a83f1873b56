"""`--plot FILE.svg|.png`: the memory-against-context chart as an image, drawn with matplotlib (the `plot` extra).

matplotlib is imported here only, when a chart is written; without it the error names the extra to install.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .errors import UnsupportedError
from .precisions import LABELS
from .results import Chart, Explained
from .units import GIB


def save(result: Any, path: str) -> Any:
    """Draw `result.chart` to `path` (the format from its suffix) and return the result naming the file."""
    if not isinstance(result, Explained) or result.chart is None:
        raise UnsupportedError(
            f"no memory chart for '{getattr(result, 'model', path)}': the model was not built",
            "Charts need the architecture; check that the model builds with 'hfsize MODEL'.",
        )
    draw(result.chart, path, title=result.model)
    return replace(result, chart=replace(result.chart, file=path))


def draw(chart: Chart, path: str, title: str = "") -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: files only
        import matplotlib.pyplot as plt
    except ImportError:
        raise UnsupportedError(
            "--plot needs matplotlib, which is not installed", "Install the plot extra: pip install 'hfsize[plot]'."
        ) from None
    figure, axes = plt.subplots(figsize=(8, 4.5))
    try:
        for name, series in chart.series.items():
            axes.plot(chart.contexts, [v / GIB for v in series], label=LABELS[name], linewidth=2)
        for label, capacity in chart.capacities.items():
            axes.axhline(capacity / GIB, linestyle="--", linewidth=1, color="grey")
            axes.annotate(label, (chart.contexts[-1], capacity / GIB), ha="right", va="bottom", fontsize=8)
        axes.set_xlabel("context length (tokens)")
        axes.set_ylabel("total memory (GiB)")
        axes.set_title(f"{title}: weights + KV cache + overhead" if title else "weights + KV cache + overhead")
        axes.legend(loc="upper left", fontsize=8)
        axes.grid(alpha=0.3)
        figure.tight_layout()
        # SVG: text kept as text (the labels stay readable and searchable)
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            figure.savefig(path)
    finally:
        plt.close(figure)
