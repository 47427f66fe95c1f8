"""Interactive explorers that also work without a kernel.

The pattern every chapter uses (Foundations: the sigma of a Gaussian target; later the
limb width of a PAF, alpha/beta of soft detection, a TPS warp):

* a **live** ipywidgets panel (sliders and a figure) for readers running the notebook
  on Binder, Colab or locally;
* a **static** fallback for the website: the same drawing function swept over one
  parameter and saved as a scrubbable animation (``matplotlib.animation`` ``to_jshtml``),
  which plays in plain HTML, offline included.

Both come from one drawing function ``draw(fig, **params)`` that draws into a fresh
matplotlib figure, so the two views can never disagree.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

import matplotlib
from matplotlib.figure import Figure

from . import checks

_CDN_LINK = re.compile(r"<link\b[^>]*\bhref=[\"'](?:https?:)?//[^>]*>\s*", re.IGNORECASE)

__all__ = ["Explorer", "explore"]


def _figsize(figsize) -> tuple[float, float]:
    """``(width, height)`` in inches, two finite numbers > 0."""
    if isinstance(figsize, (str, bytes)) or not hasattr(figsize, "__len__"):
        raise TypeError(f"figsize must be a pair (width, height) in inches, got {checks.describe(figsize)}")
    if len(figsize) != 2:
        raise ValueError(f"figsize must be a pair (width, height) in inches, got {len(figsize)} values")
    return (checks.number(figsize[0], "figsize[0] (width)", minimum=0.0, min_open=True),
            checks.number(figsize[1], "figsize[1] (height)", minimum=0.0, min_open=True))


def _fps(fps) -> float:
    return checks.number(fps, "fps", minimum=0.0, min_open=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


class Explorer:
    """An explorer for ``draw(fig, **params)`` over discrete parameter values.

    Args:
        draw: function drawing into the given :class:`matplotlib.figure.Figure`.
        params: ``name -> sequence of values`` (each becomes a slider).
        sweep: the parameter the static animation sweeps (default: the first).
        defaults: starting values (default: the middle value of each sequence).
        figsize: figure size in inches.
        dpi: resolution of the static frames.
    """

    def __init__(self, draw: Callable[..., Any], params: Mapping[str, Sequence], sweep: str | None = None,
                 defaults: Mapping[str, Any] | None = None, figsize=(8.0, 3.0), dpi: int = 80):
        if not callable(draw):
            raise TypeError("draw must be a callable draw(fig, **params)")
        if not params:
            raise ValueError("params must name at least one parameter")
        self.params = {k: list(v) for k, v in params.items()}
        for name, values in self.params.items():
            if len(values) == 0:
                raise ValueError(f"parameter {name!r} has no values")
        self.sweep = sweep or next(iter(self.params))
        if self.sweep not in self.params:
            raise ValueError(f"sweep={self.sweep!r} is not one of the parameters {list(self.params)}")
        self.defaults = {k: v[len(v) // 2] for k, v in self.params.items()}
        for k, v in (defaults or {}).items():
            if k not in self.params:
                raise ValueError(f"default for unknown parameter {k!r}")
            self.defaults[k] = v
        self.draw = draw
        self.figsize = _figsize(figsize)
        self.dpi = checks.integer(dpi, "dpi", minimum=1)

    def figure(self, **params) -> Figure:
        """Draw one state into a new figure (not shown by pyplot)."""
        values = {**self.defaults, **params}
        fig = Figure(figsize=self.figsize, dpi=self.dpi)
        self.draw(fig, **values)
        return fig

    def widget(self):
        """The live ipywidgets panel: one slider per parameter and the figure."""
        import ipywidgets as W
        from IPython.display import display

        out = W.Output()
        sliders = {
            name: W.SelectionSlider(options=[(_fmt(v), v) for v in values], value=self.defaults[name],
                                    description=name, continuous_update=False,
                                    layout=W.Layout(width="420px"))
            for name, values in self.params.items()
        }

        def refresh(*_):
            with out:
                out.clear_output(wait=True)
                display(self.figure(**{n: s.value for n, s in sliders.items()}))

        for s in sliders.values():
            s.observe(refresh, names="value")
        refresh()
        note = W.HTML("<b>Live controls</b> (need a running kernel: Binder, Colab or local Jupyter)")
        return W.VBox([note, *sliders.values(), out])

    def animation_html(self, fps: float = 2.0) -> str:
        """The static fallback: a scrubbable animation of the sweep as standalone HTML."""
        from matplotlib import animation

        fps = _fps(fps)
        values = self.params[self.sweep]
        fig = Figure(figsize=self.figsize, dpi=self.dpi)

        def frame(i):
            fig.clear()
            self.draw(fig, **{**self.defaults, self.sweep: values[i]})
            return []

        frame(0)
        anim = animation.FuncAnimation(fig, frame, frames=len(values), blit=False)
        old = matplotlib.rcParams["animation.embed_limit"]
        matplotlib.rcParams["animation.embed_limit"] = 64.0
        try:
            html = anim.to_jshtml(fps=fps, default_mode="once")
        finally:
            matplotlib.rcParams["animation.embed_limit"] = old
        # matplotlib links Font Awesome 4 from a CDN for the player's button icons; the book
        # works offline, and its theme already ships Font Awesome (which reads the same
        # `fa fa-play` classes), so the link is dropped
        return _CDN_LINK.sub("", html)

    def show(self, live: bool = True, static: bool = True, fps: float = 2.0) -> None:
        """Display the live panel and/or the static sweep."""
        fps = _fps(fps)
        from IPython.display import HTML, display

        if live:
            display(self.widget())
        if static:
            display(HTML(
                f"<p><b>Precomputed sweep of <code>{self.sweep}</code></b> "
                "(works everywhere, no kernel needed: press play or drag the slider)</p>"
                + self.animation_html(fps=fps)
            ))


def explore(draw: Callable[..., Any], params: Mapping[str, Sequence], sweep: str | None = None,
            defaults: Mapping[str, Any] | None = None, figsize=(8.0, 3.0), live: bool = True,
            static: bool = True, fps: float = 2.0) -> Explorer:
    """Build an :class:`Explorer` and display it (live panel plus static sweep)."""
    fps = _fps(fps)
    ex = Explorer(draw, params, sweep=sweep, defaults=defaults, figsize=figsize)
    ex.show(live=live, static=static, fps=fps)
    return ex
