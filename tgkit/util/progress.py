"""Who is watching: a live notebook, a terminal, or nobody (a headless batch run).

A notebook open in JupyterLab draws widgets: tqdm's progress bars (`tqdm.auto` picks its widget bars
inside a kernel) and the ipywidgets explorer of notebook 02. A headless run, `python -m tgkit batch`,
has no frontend to draw them, so the batch sets TGKIT_HEADLESS=1 for its kernels and the kit draws no
widgets there: progress bars are text, each left at its last state in the executed copy (a bar asked
not to `leave` would leave a blank line there), and the explorer draws its figure once. This also
avoids a hang we met: papermill's client waited for ever for the end of a cell that had displayed
widgets after a cell with widget progress bars, the kernel idle (rare and timing-dependent;
jupyter/nbclient#312 reports the same).
"""

from __future__ import annotations

import os

from tqdm import std
from tqdm.auto import tqdm as auto_tqdm

HEADLESS_VARIABLE = "TGKIT_HEADLESS"


def headless() -> bool:
    """True in a run that no frontend watches: TGKIT_HEADLESS=1 (set by `tgkit.study.batch` for its kernels)."""
    return os.environ.get(HEADLESS_VARIABLE) == "1"


def progress_bar(*args, **kwargs) -> std.tqdm:
    """A tqdm progress bar, with tqdm's arguments: a widget in a live notebook, text elsewhere; in a
    headless run always text, and always left in place.

    A bar that is not to be left (`leave=False`, the epochs of one training run) is text in a live
    notebook too: a widget bar that goes away closes its widget, and the notebook's saved output then
    points at a widget that no longer exists ("Error displaying widget: model not found" after a page
    reload). A widget bar that stays keeps its widget, which a reloaded page finds again in the kernel.
    """
    if headless():
        return std.tqdm(*args, **{**kwargs, "leave": True})
    if not kwargs.get("leave", True):
        return std.tqdm(*args, **kwargs)
    return auto_tqdm(*args, **kwargs)
