"""Every figure and table the notebooks show, organised by what they show, and the files they land in.

    dense        the dense networks: learning curves, final accuracies            (notebook 01)
    loss         CA-KLD against the temperature, in either order                    (notebook 01)
    importance   scores and masks per layer: distributions, kept fraction, overlap (notebook 02)
    sweep        accuracy against sparsity, the temperature ablation, the paper's   (notebook 03)
    latency      one-shot against COLT: minutes per stage, ratios, policies     (notebook 04)
    rounds       an iterative method round by round: its table, its prune rate  (notebook 04)
    claims       each claim of the paper, our number and a verdict              (notebooks 03, 04)
    deployment   file sizes, CPU latency per backend, speed-ups                 (notebook 05)
    output       figures (PNG, PDF), tables (CSV) and manifests under figures/<profile>/<dataset>/

The tables of what masks do per layer are `tgkit.mask_analysis`'s, beside the masks. The file helpers
of `output` are importable from here: `report.save_figure`, `report.save_table`, `report.figures_dir`.
"""

from tgkit.report.output import (
    DATASET_NOTES,
    PACKAGES,
    StageClock,
    dataset_note,
    figures_dir,
    git_commit,
    package_versions,
    provenance,
    save_figure,
    save_table,
    write_manifest,
)

__all__ = [
    "DATASET_NOTES",
    "PACKAGES",
    "StageClock",
    "dataset_note",
    "figures_dir",
    "git_commit",
    "package_versions",
    "provenance",
    "save_figure",
    "save_table",
    "write_manifest",
]
