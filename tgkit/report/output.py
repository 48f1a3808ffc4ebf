"""What a notebook leaves behind, as files: figures (PNG and PDF), tables (CSV), and a JSON manifest.

Everything goes to `<figures>/<profile>/<dataset>/`, where `<figures>` is $TGKIT_FIGURES (which
`python -m tgkit batch --figures-root` sets), else `figures/` of the checkout the command runs in, else
of the user folder (`tgkit.util.locations`). The manifest records what is needed to trust and
repeat the numbers: the git commit, package versions, the device, the profile, the seed, the
wall-clock of every stage, timed with `StageClock` (GPU synchronised, `device.stopwatch`), and what
differs in our copy of the dataset.
"""

from __future__ import annotations

import io
import os
import platform
import subprocess
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd
import torch

from tgkit.util import checkpoint, locations
from tgkit.util.device import stopwatch

# the text artist `save_figure` adds under a figure, found again by this id so it is added once
PROVENANCE_GID = "tgkit-provenance"
PACKAGES = ("torch", "torchvision", "numpy", "pandas", "matplotlib", "seaborn", "papermill", "ipywidgets")
# what a reader of the numbers must know about our copies of the data
DATASET_NOTES = {
    "cifar10": "CIFAR-10 from a JPEG-recompressed copy (quality 75): expect accuracies slightly below those "
    "published on the original images.",
    "tinyimagenet": "TinyImageNet-200 from a 32 px copy, not the official 64 px.",
}


def dataset_note(dataset: str) -> str:
    """What differs between our copy of `dataset` and the official one ("" when nothing does)."""
    return DATASET_NOTES.get(dataset.lower(), "")


def figures_dir(profile: str, dataset: str, root: str | Path | None = None) -> Path:
    """`<root>/<profile>/<dataset>/` (root: default `locations.figures_root()`), created if absent."""
    root = Path(root) if root else locations.figures_root()
    folder = root / profile / dataset.replace(":", "_").replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def provenance(profile: str, dataset: str, device: str) -> str:
    """The line `save_figure` prints under a figure: where its numbers come from, e.g.
    "tgkit 1a2b3c4d5e · profile quick · cifar10 · cpu (2 threads)"."""
    commit = git_commit()
    short = commit[:10] + ("-dirty" if commit.endswith("-dirty") else "")
    return f"tgkit {short} · profile {profile} · {dataset} · {device}"


def save_figure(figure, folder: Path, name: str, *, source: str | None = None) -> list[Path]:
    """Save a matplotlib figure as `<name>.png` and `<name>.pdf`, each written atomically.

    `source` (usually `provenance(...)`) is printed small under the figure, once however often it is
    saved, so that a figure copied anywhere still says which run, profile, dataset and device made it.
    """
    if source and not any(text.get_gid() == PROVENANCE_GID for text in figure.texts):
        add_footer(figure, source)
    paths = []
    for suffix in ("png", "pdf"):
        buffer = io.BytesIO()
        figure.savefig(buffer, format=suffix, dpi=150, bbox_inches="tight")
        paths.append(checkpoint.write_bytes_atomic(buffer.getvalue(), folder / f"{name}.{suffix}"))
    return paths


def add_footer(figure, text: str, *, gap_inches: float = 0.05) -> None:
    """Print `text` small under everything the figure draws, right-aligned with its right edge.

    Slanted tick labels and legends beside the axes reach past the figure's own frame, so the footer
    goes below the box that holds every artist once drawn (`get_tightbbox`, in inches), never across
    a label; `bbox_inches="tight"` then grows the saved image to take it in.
    """
    figure.draw_without_rendering()
    drawn = figure.get_tightbbox()
    width, height = figure.get_size_inches()
    x, y = drawn.x1 / width, (drawn.y0 - gap_inches) / height
    figure.text(x, y, text, ha="right", va="top", fontsize=6, color="0.4", gid=PROVENANCE_GID)


def save_table(table: pd.DataFrame, folder: Path, name: str) -> Path:
    """Save a table as `<name>.csv`, atomically."""
    return checkpoint.write_text_atomic(table.to_csv(index=False), folder / f"{name}.csv")


class StageClock:
    """Wall-clock per named stage; `with clock("teacher"): ...` (GPU work is waited for at both ends)."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        try:
            with stopwatch(self.device) as elapsed:
                yield
        finally:  # a failing stage still shows how long it ran
            self.seconds[stage] = self.seconds.get(stage, 0.0) + elapsed.seconds


def git_commit() -> str:
    """HEAD of the checkout whose code is running (`locations.code_checkout()`), "-dirty" when tracked
    files changed; where there is none or no git (an installed kit, a copy of the tree on a GPU node),
    $TGKIT_GIT_COMMIT, else "unknown"."""
    folder = locations.code_checkout()
    if folder is not None:
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=folder,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            return commit + ("-dirty" if dirty else "")
        except (OSError, subprocess.CalledProcessError):
            pass  # a checkout without git: the variable below names the commit
    return os.environ.get("TGKIT_GIT_COMMIT") or "unknown"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def write_manifest(
    folder: Path,
    notebook: str,
    *,
    profile: str,
    dataset: str,
    seed: int,
    device: str,
    clock: StageClock,
    config=None,
    **extra,
) -> Path:
    """Write `<notebook>.manifest.json` beside the notebook's figures and tables."""
    manifest = {
        "notebook": notebook,
        "profile": profile,
        "dataset": dataset,
        "dataset_note": dataset_note(dataset),
        "seed": seed,
        "device": device,
        "git_commit": git_commit(),
        "packages": package_versions(),
        "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "stage_seconds": clock.seconds,
        "total_seconds": sum(clock.seconds.values()),
        "config": asdict(config) if is_dataclass(config) else config,
        **extra,
    }
    return checkpoint.write_json_atomic(manifest, folder / f"{Path(notebook).stem}.manifest.json")
