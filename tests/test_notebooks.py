"""The notebooks as files (one literal `parameters` cell, no outputs), and the helpers they compute with
(`tgkit.report`, `tgkit.mask_analysis`), on small hand-made networks and scores: nothing here trains."""

import ast
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import pytest
import torch
from torch import nn

from tgkit import losses, mask_analysis, masker, models, scorer
from tgkit.hparams import profile as make_profile
from tgkit.report import dense, importance, loss

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---- the notebook files -------------------------------------------------------------------------


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_committed_clean(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name}: clear the outputs before committing"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_has_one_parameters_cell_of_smoke_literals(path):
    notebook = nbformat.read(path, as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    assert tagged[0].cell_type == "code"
    values = {}
    for statement in ast.parse(tagged[0].source).body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, (
            f"{path.name}: the parameters cell may only assign literals, one name per line"
        )
        values[statement.targets[0].id] = ast.literal_eval(statement.value)
    # nbval runs the notebooks with these literals, and the batch injects these names
    assert {"profile": "smoke", "dataset": "digits", "seed": 0}.items() <= values.items()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_papermill_reads_every_parameter_with_its_help(path):
    """papermill skips, with a warning, a parameter line holding a second "=" (in its comment too)."""
    from papermill.translators import PythonTranslator

    notebook = nbformat.read(path, as_version=4)
    cell = next(cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    assigned = [line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line]
    parsed = PythonTranslator.inspect(cell)
    assert [parameter.name for parameter in parsed] == assigned
    assert all(parameter.help for parameter in parsed), f"{path.name}: say what each parameter is for"


# ---- notebook 01: the dense networks and the loss ----------------------------------------------


def fake_result(model: nn.Module, epochs: int, kd: float) -> dict:
    history = [
        {
            "epoch": e + 1,
            "lr": 0.1,
            "loss": 2.0 / (e + 1) + kd,
            "ce": 2.0 / (e + 1),
            "kd": kd,
            "train_accuracy": 0.5 + 0.04 * e,
            "val_accuracy": 0.6 + 0.03 * e,
            "seconds": 1.0,
        }
        for e in range(epochs)
    ]
    return {"model": model, "history": history, "test_accuracy": 0.7, "seconds": 90.0, "cached": True}


def test_history_and_accuracy_tables():
    config = make_profile("smoke")
    teacher = fake_result(models.build_model("resnet10", 10, in_channels=1, width=4), epochs=3, kd=0.0)
    student = fake_result(models.build_model("resnet10", 10, in_channels=1, width=2), epochs=2, kd=0.1)
    history = dense.history_table({"teacher": teacher, "dense student": student})
    assert list(history["network"]) == ["teacher"] * 3 + ["dense student"] * 2
    assert history.loc[4, "val_accuracy"] == pytest.approx(0.63)
    accuracies = dense.dense_networks_table(config, teacher=teacher, student=student)
    assert list(accuracies["network"]) == ["teacher", "dense student"]
    assert list(accuracies["epochs"]) == [3, 2]
    assert accuracies.loc[0, "best_val_accuracy"] == pytest.approx(0.66)
    assert accuracies.loc[1, "parameters"] == sum(p.numel() for p in student["model"].parameters())
    assert accuracies.loc[0, "training_minutes"] == pytest.approx(1.5)
    dense.plot_learning_curves(history)


def test_ca_kld_by_temperature_shows_that_the_authors_order_cancels_t():
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(16, 10, generator=generator), torch.randn(16, 10, generator=generator)
    table = loss.ca_kld_by_temperature(student, teacher, [1, 3, 10])
    assert len(table) == 2 * 3 and set(table["order"]) == set(losses.ORDERS)
    paper = table[table["order"] == "paper"].set_index("temperature")
    authors = table[table["order"] == "authors"].set_index("temperature")
    assert authors["ca_kld"].tolist() == pytest.approx([authors.loc[1.0, "ca_kld"]] * 3, rel=1e-4)
    assert paper.loc[10.0, "ca_kld"] < paper.loc[3.0, "ca_kld"] < paper.loc[1.0, "ca_kld"]
    assert table["scaled_ca_kld"].tolist() == pytest.approx((table["temperature"] ** 2 * table["ca_kld"]).tolist())
    assert paper.loc[3.0, "ca_kld"] == pytest.approx(losses.ca_kld(student, teacher, 3.0).item())
    # T^2 keeps the gradient's scale in the paper's order, and multiplies it by T^2 in the authors'
    assert paper.loc[10.0, "scaled_gradient_norm"] == pytest.approx(paper.loc[3.0, "scaled_gradient_norm"], rel=0.3)
    assert authors.loc[10.0, "scaled_gradient_norm"] == pytest.approx(
        100 * authors.loc[1.0, "scaled_gradient_norm"], rel=1e-3
    )
    loss.plot_ca_kld_by_temperature(table)


# ---- notebook 02: masks, per-layer tables, collapse ---------------------------------------------


def resnet() -> nn.Module:
    return models.build_model("resnet10", 10, in_channels=1, width=2)


def ranked_scores(model: nn.Module, low: set[str] = frozenset()) -> dict[str, torch.Tensor]:
    """Distinct scores; the tensors named in `low` score below every other tensor."""
    params = masker.prunable_parameters(model)
    scores, offset = {}, 0
    for name, param in params.items():
        base = 0.0 if name in low else 1.0
        scores[name] = base + (torch.arange(param.numel(), dtype=torch.float32) + offset).reshape(param.shape) * 1e-5
        offset += param.numel()
    return scores


def test_cut_layers_knows_that_a_shortcut_bypasses_an_emptied_branch():
    model = resnet()
    params = masker.prunable_parameters(model)
    keep_all = {name: torch.ones_like(param, dtype=torch.bool) for name, param in params.items()}

    def emptied(*names):
        return {**keep_all, **{name: torch.zeros_like(keep_all[name]) for name in names}}

    # layer1.0 has an identity shortcut, layer4.0 a 1x1 convolution
    assert mask_analysis.cut_layers(model, emptied("layer1.0.conv2.weight")) == []
    assert mask_analysis.cut_layers(model, emptied("layer4.0.conv1.weight", "layer4.0.conv2.weight")) == []
    assert mask_analysis.cut_layers(model, emptied("layer4.0.downsample.0.weight")) == []
    both = emptied("layer4.0.conv1.weight", "layer4.0.downsample.0.weight")
    assert mask_analysis.cut_layers(model, both) == ["layer4.0.conv1.weight", "layer4.0.downsample.0.weight"]
    assert mask_analysis.cut_layers(model, emptied("conv1.weight")) == ["conv1.weight"]
    assert mask_analysis.collapsed_layers(both) == ["layer4.0.conv1.weight", "layer4.0.downsample.0.weight"]


def test_cut_layers_on_a_plain_cnn_cuts_at_any_emptied_layer():
    model = models.build_model("smallcnn", 10, in_channels=1, width=2)
    masks = {
        name: torch.ones_like(param, dtype=torch.bool) for name, param in masker.prunable_parameters(model).items()
    }
    masks["3.weight"] = torch.zeros_like(masks["3.weight"])
    assert mask_analysis.cut_layers(model, masks) == ["3.weight"]


def test_layer_and_sparsity_tables():
    model = resnet()
    branch = {"layer4.0.conv1.weight", "layer4.0.conv2.weight"}
    scores = {
        "teacher_guided": ranked_scores(model, low=branch),
        "random": scorer.random_scores(model),
        "snip": ranked_scores(model, low=branch),
    }
    emptied_weights = sum(masker.prunable_parameters(model)[name].numel() for name in branch)
    prunable_weights = sum(p.numel() for p in masker.prunable_parameters(model).values())
    ratio = emptied_weights / prunable_weights
    masks = mask_analysis.masks_by_criterion(scores, ratio)  # no LayerCollapseWarning: the tables report it
    layers = mask_analysis.layer_table(model, masks)

    assert len(layers) == 3 * len(masker.prunable_parameters(model))
    teacher_guided = layers[layers["criterion"] == "teacher_guided"].set_index("layer")
    assert set(teacher_guided.index[teacher_guided["collapsed"]]) == branch
    assert not teacher_guided["cuts_network"].any()  # the 1x1 shortcut of layer4.0 survives
    assert teacher_guided.loc["layer4.0.conv1.weight", "kept_fraction"] == 0.0
    assert (teacher_guided["overlap"] == 1.0).all()  # the reference against itself
    snip = layers[layers["criterion"] == "snip"]
    assert (snip["overlap"] == 1.0).all()  # the same masks
    random = layers[layers["criterion"] == "random"].set_index("layer")
    assert (random["kept_fraction"] > 0).all()
    assert ((layers["kept"] / layers["weights"]) == layers["kept_fraction"]).all()

    target = masker.global_sparsity(model, masks["teacher_guided"], over="all")
    sparsities = mask_analysis.sparsity_table(model, masks, target).set_index("criterion")
    assert list(sparsities.index) == ["teacher_guided", "random", "snip"]
    assert sparsities["sparsity_all"].tolist() == pytest.approx([target] * 3)
    assert sparsities["sparsity_prunable"].tolist() == pytest.approx([ratio] * 3, abs=1e-6)
    assert sparsities.loc["teacher_guided", "collapsed_layers"] == "layer4.0.conv1.weight; layer4.0.conv2.weight"
    assert sparsities.loc["teacher_guided", "cut_layers"] == ""
    assert sparsities.loc["random", "collapsed_layers"] == ""
    assert 0 <= sparsities.loc["random", "overlap"] < 1
    assert sparsities.loc["snip", "overlap"] == 1


def test_relative_log_scores_put_the_threshold_at_zero():
    scores = {"a": torch.tensor([0.0, 1.0, 10.0]), "b": torch.tensor([100.0, 1000.0])}
    masks = masker.global_masks(scores, 0.4)  # prunes 0 and 1
    relative = importance.relative_log_scores(scores, masks)
    assert relative["a"].tolist() == pytest.approx([importance.LOWEST_DECADE, -1.0, 0.0])
    assert relative["b"].tolist() == pytest.approx([1.0, 2.0])


def test_notebook_02_figures_draw():
    model = resnet()
    scores = {"teacher_guided": ranked_scores(model), "magnitude": ranked_scores(model, low={"conv1.weight"})}
    masks = mask_analysis.masks_by_criterion(scores, 0.5)
    table = mask_analysis.layer_table(model, masks)
    importance.plot_score_distributions(scores, masks, sample_per_layer=50)
    importance.plot_layer_scores(scores["magnitude"], masks["magnitude"], "layer2.0.conv1.weight")
    importance.plot_kept_fraction(table, title="kept")
    importance.plot_mask_overlap(table, title="overlap")


def test_git_sees_notebooks_without_their_outputs_once_the_filter_is_set(tmp_path):
    """What `make lab` sets up: outputs autosaved into a notebook leave `git diff` clean, `git add` stages
    nothing, and the commit keeps the notebook without outputs."""
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "scripts").mkdir()
    shutil.copy(repo / "scripts" / "strip_notebook_outputs.sh", tmp_path / "scripts")
    shutil.copy(repo / ".gitattributes", tmp_path)
    notebook = tmp_path / "02.ipynb"
    shutil.copy(NOTEBOOKS[1], notebook)

    def git(*arguments: str) -> str:
        return subprocess.run(["git", *arguments], cwd=tmp_path, capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    git("config", "user.email", "test@example.org")
    git("config", "user.name", "test")
    subprocess.run(
        ["bash", "scripts/strip_notebook_outputs.sh", sys.executable], cwd=tmp_path, check=True, capture_output=True
    )
    git("add", ".")
    git("commit", "-q", "-m", "clean notebook")
    executed = nbformat.read(notebook, as_version=4)
    code = next(cell for cell in executed.cells if cell.cell_type == "code")
    code.execution_count = 7
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="trained in 2 minutes\n")]
    nbformat.write(executed, notebook)
    assert "trained in 2 minutes" in notebook.read_text()  # JupyterLab's autosave wrote the outputs
    assert git("diff") == ""
    git("add", "-A")  # stages nothing: the filtered notebook is the committed one
    assert git("diff", "--cached") == "" and git("status", "--porcelain") == ""
    assert git("show", "HEAD:02.ipynb") == NOTEBOOKS[1].read_text()  # the committed notebook: as it was
