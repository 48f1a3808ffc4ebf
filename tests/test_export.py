"""`tgkit.deploy.export`: the sparse export: exact round trips, the sizes the format promises, and clear
errors for files that are not one."""

import io
import json
import math
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from tgkit import masker, models
from tgkit.deploy import export


def pruned_resnet(conv_sparsity: float, *, arch: str = "resnet18", width: int = 16, seed: int = 0):
    """A ResNet with trained-looking BatchNorm and a random mask of `conv_sparsity` on every convolution."""
    torch.manual_seed(seed)
    model = models.build_model(arch, 10, width=width).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        masks = {name: torch.rand_like(p) >= conv_sparsity for name, p in masker.prunable_parameters(model).items()}
    return masker.apply_masks(model, masks), export.model_spec(model, arch, width)


def dense_state_dict_bytes(model) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return len(buffer.getvalue())


@pytest.mark.parametrize("conv_sparsity", [0.0, 0.5, 0.9, 0.98, 1.0])
def test_the_float32_round_trip_is_exact(tmp_path, conv_sparsity):
    model, spec = pruned_resnet(conv_sparsity)
    path = export.export_sparse(model, tmp_path / "student.safetensors", spec)
    loaded = export.load_sparse(path)
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for name in original:
        assert original[name].dtype == restored[name].dtype and torch.equal(original[name], restored[name]), name
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(images), model(images))


@pytest.mark.parametrize("in_channels", [3, 1])
def test_an_airbench_student_round_trips_with_its_fitted_whitening(tmp_path, in_channels):
    """The header names the image's channels, not the 8c whitened ones that the first nn.Conv2d sees."""
    images = torch.randn(8, in_channels, 32, 32)
    model = models.build_model("airbench", 10, in_channels=in_channels, width=4).eval()
    model.whiten.fit(images)
    masks = {name: torch.rand_like(p) >= 0.9 for name, p in masker.prunable_parameters(model).items()}
    model, spec = masker.apply_masks(model, masks), export.model_spec(model, "airbench", 4)
    assert spec["in_channels"] == in_channels
    loaded = export.load_sparse(export.export_sparse(model, tmp_path / "student.safetensors", spec))
    assert bool(loaded.whiten.fitted)
    with torch.no_grad():
        assert torch.equal(loaded(images), model(images))


@pytest.mark.parametrize(("conv_sparsity", "largest_share"), [(0.9, 0.20), (0.98, 0.06)])
def test_the_export_is_a_small_share_of_the_dense_state_dict(tmp_path, conv_sparsity, largest_share):
    model, spec = pruned_resnet(conv_sparsity)
    path = export.export_sparse(model, tmp_path / "student.safetensors", spec)
    share = path.stat().st_size / dense_state_dict_bytes(model)
    assert share <= largest_share
    assert export.size_row(model, spec)["sparse_export"] == path.stat().st_size


def test_one_network_exports_to_the_same_bytes_in_every_process():
    """safetensors writes its metadata in a per-process hash order; the export sorts its header, so the
    file (and its gzipped size, a column of notebook 05's table) does not change from run to run."""
    code = (
        "import hashlib, torch; from tgkit import models; from tgkit.deploy import export; torch.manual_seed(0); "
        "m = models.build_model('resnet10', 10, width=4); "
        "print(hashlib.sha256(export.export_bytes(m, export.model_spec(m, 'resnet10', 4))).hexdigest())"
    )
    digests = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(3)
    }
    assert len(digests) == 1


def test_each_tensor_takes_its_smallest_encoding():
    dense_kernel = torch.randn(64, 64, 3, 3)
    half = dense_kernel * (torch.rand_like(dense_kernel) >= 0.5)
    few = dense_kernel * (torch.rand_like(dense_kernel) >= 0.99)
    assert export.encode("w", dense_kernel, torch.float32)[0] == "dense"
    assert export.encode("w", half, torch.float32)[0] == "bitmask"
    assert export.encode("w", few, torch.float32)[0] == "csr"
    # 576 columns need 2-byte indices; at most nnz row starts fit in 1 byte when nnz < 256
    _, parts = export.encode("w", few, torch.float32)
    assert parts["w::col"].dtype == torch.uint16
    nnz = int(torch.count_nonzero(few))
    assert parts["w::crow"].dtype == export.index_dtype(nnz)
    sizes = export.encoded_bytes(few, 4)
    assert sizes["csr"] == nnz * (4 + 2) + 65 * export.index_dtype(nnz).itemsize
    assert sizes["bitmask"] == nnz * 4 + math.ceil(few.numel() / 8)


def test_index_types_are_the_narrowest_that_fit():
    assert export.index_dtype(255) == torch.uint8
    assert export.index_dtype(256) == torch.uint16
    assert export.index_dtype(65_535) == torch.uint16
    assert export.index_dtype(65_536) == torch.uint32


@pytest.mark.parametrize("values", ["float16", "bfloat16"])
def test_16_bit_values_halve_the_file_and_round_each_weight(tmp_path, values):
    model, spec = pruned_resnet(0.9)
    full = export.export_sparse(model, tmp_path / "fp32.safetensors", spec)
    half = export.export_sparse(model, tmp_path / "half.safetensors", spec, values=values)
    assert half.stat().st_size < 0.7 * full.stat().st_size
    loaded = export.load_sparse(half)
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            rounded = tensor.to(export.VALUE_DTYPES[values]).float()
            assert torch.equal(loaded.state_dict()[name], rounded), name


def test_an_unknown_value_type_is_refused(tmp_path):
    model, spec = pruned_resnet(0.9, arch="resnet10", width=8)
    with pytest.raises(ValueError, match="float32, float16, bfloat16"):
        export.export_sparse(model, tmp_path / "x.safetensors", spec, values="int8")


def test_a_truncated_export_names_the_fix(tmp_path):
    model, spec = pruned_resnet(0.9, arch="resnet10", width=8)
    path = export.export_sparse(model, tmp_path / "student.safetensors", spec)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(export.ExportFormatError, match="export the model again"):
        export.load_sparse(path)


def test_a_foreign_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.ones(3)}, path, metadata={"format": "pt"})
    with pytest.raises(export.ExportFormatError, match="format 'pt', not tgkit.sparse/1"):
        export.read_export(path)
    save_file({"weight": torch.ones(3)}, path)
    with pytest.raises(export.ExportFormatError, match="without tgkit's header"):
        export.read_export(path)


def test_a_file_that_is_no_safetensors_and_a_missing_one_are_refused(tmp_path):
    torch.save({"weight": torch.ones(3)}, tmp_path / "model.pt")
    with pytest.raises(export.ExportFormatError, match="not a readable safetensors file"):
        export.load_sparse(tmp_path / "model.pt")
    with pytest.raises(export.ExportFormatError, match="no export file"):
        export.load_sparse(tmp_path / "missing.safetensors")


def test_damaged_indices_are_refused_not_read_out_of_bounds(tmp_path):
    model, spec = pruned_resnet(0.99, arch="resnet10", width=8)
    path = export.export_sparse(model, tmp_path / "student.safetensors", spec)
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata()
        parts = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    column = "layer1.0.conv1.weight::col"  # 8 x 8 x 3 x 3: 72 columns, indices in uint8
    parts[column] = torch.full_like(parts[column], 200)
    save_file(parts, path, metadata=metadata)
    with pytest.raises(export.ExportFormatError, match="column index past"):
        export.load_sparse(path)


def test_a_header_that_does_not_fit_the_network_is_refused(tmp_path):
    model, spec = pruned_resnet(0.9, arch="resnet10", width=8)
    path = export.export_sparse(model, tmp_path / "student.safetensors", {**spec, "width": 16})
    with pytest.raises(export.ExportFormatError, match="does not fit the network"):
        export.load_sparse(path)


def test_the_header_records_format_model_and_encodings(tmp_path):
    model, spec = pruned_resnet(0.98, arch="resnet10", width=8)
    path = export.export_sparse(model, tmp_path / "student.safetensors", spec)
    from safetensors import safe_open

    with safe_open(path, framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["format"] == export.EXPORT_FORMAT and json.loads(metadata["model"]) == spec
    table = export.encodings(path)
    assert set(table["encoding"]) <= set(export.ENCODINGS)
    assert table.set_index("tensor").loc["layer1.0.conv1.weight", "encoding"] in ("csr", "bitmask")


class OwnNetwork(torch.nn.Module):
    """A network the kit cannot build by name: a convolution, a depthwise one, and a classifier."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.depthwise = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.norm = torch.nn.BatchNorm2d(8)
        self.classifier = torch.nn.Linear(8, 5)

    def forward(self, x):
        return self.classifier(self.norm(self.depthwise(self.conv(x))).mean((2, 3)))


def test_a_network_of_your_own_round_trips_into_one_you_build(tmp_path):
    torch.manual_seed(0)
    model = OwnNetwork().eval()
    masks = {name: torch.rand_like(p) >= 0.9 for name, p in masker.prunable_parameters(model).items()}
    masker.apply_masks(model, masks)
    path = export.export_sparse(model, tmp_path / "own.safetensors")
    with pytest.raises(export.InputError, match=r"test_export.OwnNetwork.*load_sparse\(path, into=network\)"):
        export.load_sparse(path)
    torch.manual_seed(1)  # other initial weights: every one must come from the file
    loaded = export.load_sparse(path, into=OwnNetwork())
    for (name, expected), actual in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(expected, actual), name
    x = torch.randn(2, 3, 6, 6)
    assert torch.equal(loaded(x), model(x)) and not loaded.training


def test_an_export_loaded_into_another_network_names_what_differs(tmp_path):
    path = export.export_sparse(OwnNetwork(), tmp_path / "own.safetensors")
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3))
    with pytest.raises(export.ExportFormatError, match=r"does not fit the network Sequential: \d+ entries differ"):
        export.load_sparse(path, into=other)
