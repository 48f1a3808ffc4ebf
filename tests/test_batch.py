"""`tgkit.study.batch`, the headless batch: every notebook, smoke profile, into a temporary figures folder.

The notebooks train what they need through the run cache ($TGKIT_RUNS, else data/runs), which this
test shares with nbval's run of the same notebooks: each stage is computed once per configuration.
"""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from tgkit import hparams
from tgkit.study import batch
from tgkit.util.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SMOKE = hparams.profile("smoke")
SPARSITY = 0.9  # notebook 02's parameter
PRUNABLE_LAYERS = 12  # the convolutions of the smoke student, a ResNet-10
CRITERIA = ["teacher_guided", "magnitude", "snip"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # the output type of a displayed ipywidget
CELL_TIMEOUT = "300"  # seconds; a smoke cell takes under 30 on 2 CPU cores: a hung cell fails the test fast

# What each notebook must leave in figures/<profile>/<dataset>/: figures (PNG and PDF) and tables.
EXPECTED = {
    "01_teacher_training": {
        "figures": ["01_learning_curves", "01_ca_kld_temperature"],
        "tables": ["01_history", "01_accuracies", "01_ca_kld_temperature"],
    },
    "02_importance_per_layer": {
        "figures": [
            "02_pruned_kernels",
            "02_score_distributions",
            "02_kept_fraction",
            "02_mask_overlap",
            "02_layer_sensitivity",
            "02_explorer",
        ],
        "tables": ["02_layers", "02_sparsity", "02_layer_sensitivity", "02_layer_ranking"],
    },
    "03_sparsity_sweep": {
        "figures": ["03_accuracy_vs_sparsity", "03_temperature_ablation"],
        "tables": ["03_sweep_runs", "03_sweep_summary", "03_claims"],
    },
    "04_colt_latency": {
        "figures": ["04_wall_clock_per_stage", "04_sparsity_vs_time", "04_effective_prune_rate"],
        "tables": [
            "04_training_policy",
            "04_rounds",
            "04_latency",
            "04_accuracy",
            "04_latency_beside_paper",
            "04_claims",
        ],
    },
    "05_deployment": {
        "figures": ["05_file_size", "05_latency", "05_speedup", "05_layer_speedup"],
        "tables": ["05_sizes", "05_export_accuracy", "05_latency", "05_crossover", "05_speedup", "05_layer_latency"],
    },
    "06_teacher_help": {
        "figures": [
            "06_teachers",
            "06_both_roles",
            "06_kd_gap",
            "06_mask_overlap",
            "06_target_entropy",
            "06_ablation",
        ],
        "tables": [
            "06_teachers",
            "06_plan",
            "06_runs",
            "06_scoring_worth",
            "06_kd_gap",
            "06_mask_overlap",
            "06_target_entropy",
            "06_gradient_shares",
            "06_ablation",
            "06_verdicts",
        ],
    },
}


def run_batch(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tgkit", "batch", "--cell-timeout", CELL_TIMEOUT, *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def write_notebook(path: Path, *sources: str) -> Path:
    nbformat.write(
        nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(source) for source in sources],
            metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
        ),
        path,
    )
    return path


def notebooks_folder_state() -> dict[str, float]:
    return {str(path.relative_to(REPO)): path.stat().st_mtime for path in (REPO / "notebooks").rglob("*")}


@pytest.fixture(scope="module")
def smoke_batch(tmp_path_factory):
    """Run every notebook once in the smoke profile; returns the output folder."""
    root = tmp_path_factory.mktemp("figures")
    before = notebooks_folder_state()
    finished = run_batch("--profile", "smoke", "--figures-root", str(root))
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert notebooks_folder_state() == before, "the batch must leave notebooks/ untouched"
    return root / "smoke" / "digits", finished.stdout


def table(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", keep_default_na=False)


@pytest.mark.slow
def test_batch_runs_every_notebook_in_name_order(smoke_batch):
    folder, printed = smoke_batch
    notebooks = sorted(path.name for path in (REPO / "notebooks").glob("*.ipynb"))
    progress = [line for line in printed.splitlines() if line.startswith("[")]
    assert len(progress) == len(notebooks)
    for number, (line, name) in enumerate(zip(progress, notebooks), 1):
        assert line.startswith(f"[{number}/{len(notebooks)}] {name} ...") and line.endswith(" s")
    for name in notebooks:
        executed = nbformat.read(folder / "executed" / name, as_version=4)
        injected = [cell for cell in executed.cells if "injected-parameters" in cell.metadata.get("tags", [])]
        assert len(injected) == 1 and 'profile = "smoke"' in injected[0].source


@pytest.mark.slow
@pytest.mark.parametrize("notebook", EXPECTED)
def test_notebook_writes_its_figures_tables_and_manifest(smoke_batch, notebook):
    folder, _ = smoke_batch
    for name in EXPECTED[notebook]["figures"]:
        for suffix in ("png", "pdf"):
            assert (folder / f"{name}.{suffix}").stat().st_size > 1000, f"{name}.{suffix} is empty"
    for name in EXPECTED[notebook]["tables"]:
        assert len(table(folder, name)) > 0, f"{name}.csv has no rows"
    manifest = json.loads((folder / f"{notebook}.manifest.json").read_text())
    assert (manifest["profile"], manifest["dataset"], manifest["seed"]) == ("smoke", "digits", 0)
    assert manifest["git_commit"] and manifest["device"] and manifest["packages"]["torch"]
    assert manifest["stage_seconds"] and all(seconds >= 0 for seconds in manifest["stage_seconds"].values())


@pytest.mark.slow
def test_a_headless_batch_displays_no_widgets(smoke_batch):
    """No frontend draws widgets in a batch run: progress bars are text, and the explorer of notebook 02
    draws its figure once, as a plain image."""
    folder, _ = smoke_batch
    for path in sorted((folder / "executed").glob("*.ipynb")):
        outputs = [output for cell in nbformat.read(path, as_version=4).cells for output in cell.get("outputs", [])]
        assert not [output for output in outputs if WIDGET_VIEW in output.get("data", {})], path.name
    explorer = next(
        cell
        for cell in nbformat.read(folder / "executed" / "02_importance_per_layer.ipynb", as_version=4).cells
        if "def explore(" in cell.source
    )
    assert [output for output in explorer.outputs if "image/png" in output.get("data", {})]


@pytest.mark.slow
def test_notebook_01_tables(smoke_batch):
    folder, _ = smoke_batch
    accuracies = table(folder, "01_accuracies")
    assert list(accuracies["network"]) == ["teacher", "dense student"]
    assert list(accuracies["architecture"]) == [SMOKE.teacher.arch, SMOKE.student.arch]
    for column in ("final_train_accuracy", "best_val_accuracy", "test_accuracy"):
        assert accuracies[column].between(0, 1).all()
    assert (accuracies["test_accuracy"] > 0.5).all()  # both learned something: ten classes, chance is 0.1
    history = table(folder, "01_history")
    epochs = history.groupby("network", sort=False)["epoch"].max()
    assert epochs.to_dict() == {
        "teacher": SMOKE.teacher_training.epochs,
        "dense student": SMOKE.student_training.epochs,
    }
    assert history[["train_accuracy", "val_accuracy"]].stack().between(0, 1).all()
    by_temperature = table(folder, "01_ca_kld_temperature")
    assert sorted(set(by_temperature["order"])) == ["authors", "paper"]
    assert (by_temperature["ca_kld"] >= 0).all()


@pytest.mark.slow
def test_notebook_02_tables(smoke_batch):
    folder, _ = smoke_batch
    sparsities = table(folder, "02_sparsity")
    assert list(sparsities["criterion"]) == CRITERIA
    assert (sparsities["target_sparsity"] == SPARSITY).all()
    assert sparsities["sparsity_all"].tolist() == pytest.approx([SPARSITY] * 3, abs=1e-4)
    assert (sparsities["sparsity_prunable"] > SPARSITY).all()  # only the convolutions lose weights
    assert sparsities["overlap"].between(0, 1).all()
    assert sparsities.loc[0, "overlap"] == 1.0  # teacher-guided against itself
    layers = table(folder, "02_layers")
    assert len(layers) == PRUNABLE_LAYERS * len(CRITERIA)
    assert layers["kept_fraction"].between(0, 1).all() and layers["overlap"].between(0, 1).all()
    assert (layers["collapsed"] == (layers["kept"] == 0)).all()
    assert not (layers["cuts_network"] & ~layers["collapsed"]).any()
    for criterion, rows in layers.groupby("criterion"):
        assert 1 - rows["kept"].sum() / rows["weights"].sum() == pytest.approx(
            sparsities.set_index("criterion").loc[criterion, "sparsity_prunable"]
        )


@pytest.mark.slow
def test_notebook_05_tables(smoke_batch):
    folder, _ = smoke_batch
    levels = sorted(set(hparams.profile("smoke").deployment.sparsities) | set(hparams.profile("smoke").sweep))
    sizes = table(folder, "05_sizes")
    assert sorted(sizes["sparsity"].unique()) == pytest.approx(levels)
    fp32 = sizes[sizes["values"] == "float32"]
    assert (fp32["sparse_export"] < fp32["dense_state_dict"]).all()
    assert fp32["sparse_export"].is_monotonic_decreasing  # fewer weights, a smaller file
    assert fp32["dense_state_dict"].nunique() == 1  # zeros in dense tensors weigh as much as any value
    accuracy = table(folder, "05_export_accuracy")
    assert (accuracy.loc[accuracy["values"] == "float32", "difference_points"] == 0).all()
    latency = table(folder, "05_latency")
    smoke_batch_sizes = set(hparams.profile("smoke").deployment.batch_sizes)
    assert set(latency["backend"]) == {"dense", "masked dense", "sparse", "onnxruntime"}
    assert set(latency["batch_size"]) == smoke_batch_sizes
    assert (latency["max_abs_logit_difference"] < 1e-3).all()
    assert set(table(folder, "05_crossover")["batch_size"]) == smoke_batch_sizes
    layers = table(folder, "05_layer_latency")
    assert len(layers) == PRUNABLE_LAYERS * len(levels) * len(smoke_batch_sizes)


@pytest.mark.slow
def test_a_failing_notebook_stops_the_batch_with_its_error(tmp_path):
    failing = write_notebook(tmp_path / "a_fails.ipynb", "ratio = 1 / 0")
    never_run = write_notebook(tmp_path / "b_never_runs.ipynb", "print('ran')")
    finished = run_batch(
        "--profile", "smoke", "--figures-root", str(tmp_path / "figures"), "--notebooks", str(never_run), str(failing)
    )
    assert finished.returncode == 1
    assert "[1/2] a_fails.ipynb ... FAILED" in finished.stdout
    assert "ratio = 1 / 0" in finished.stderr and "ZeroDivisionError" in finished.stderr
    executed = tmp_path / "figures" / "smoke" / "digits" / "executed"
    assert (executed / "a_fails.ipynb").exists() and not (executed / "b_never_runs.ipynb").exists()


@pytest.mark.slow
def test_a_cell_past_the_timeout_fails_its_notebook_in_a_headless_kernel(tmp_path):
    notebook = write_notebook(
        tmp_path / "slow.ipynb",
        "import os\nassert os.environ['TGKIT_HEADLESS'] == '1'",
        "import time\ntime.sleep(60)  # the cell that hangs",
    )
    with pytest.raises(batch.NotebookFailed, match="the cell that hangs"):
        batch.run_notebooks([notebook], profile="smoke", dataset="digits", figures_root=tmp_path, cell_timeout=3)
    executed = nbformat.read(tmp_path / "smoke" / "digits" / "executed" / "slow.ipynb", as_version=4)
    assert executed.cells[0].metadata.papermill.status == "completed"  # the headless check passed


def test_unknown_notebook_is_refused_with_the_available_ones():
    with pytest.raises(InputError, match="01_teacher_training"):
        batch.find_notebooks(["no_such_notebook"])


def test_notebooks_are_found_by_name_or_path():
    by_name = batch.find_notebooks(["02_importance_per_layer", "01_teacher_training.ipynb"])
    assert [path.name for path in by_name] == ["01_teacher_training.ipynb", "02_importance_per_layer.ipynb"]
    assert batch.find_notebooks([str(REPO / "notebooks" / "01_teacher_training.ipynb")]) == by_name[:1]


def test_default_profile_follows_the_device(monkeypatch):
    monkeypatch.setattr(batch.torch.cuda, "is_available", lambda: False)
    assert batch.default_profile() == "quick"
    monkeypatch.setattr(batch.torch.cuda, "is_available", lambda: True)
    assert batch.default_profile() == "full"
