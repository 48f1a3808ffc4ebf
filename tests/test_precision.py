"""bf16 autocast where the device has bf16 units, a property that crosses modules: the choice
(`tgkit.util.device`), the setting that forces it (`hparams.TrainConfig`), the memory format that goes
with it and training that stays deterministic at a fixed thread count (`tgkit.train`), and the run
cache key that records it (`tgkit.study.runcache`)."""

import dataclasses

import pytest
import torch

from tgkit import models
from tgkit.hparams import TrainConfig
from tgkit.train import fit
from tgkit.util import device
from tgkit.util.device import memory_format_for, tiny_strided_1x1

pytestmark = pytest.mark.usefixtures("one_thread")


def cpu_with_bf16_units(monkeypatch, present: bool, capability: str = "AVX512") -> None:
    for query in device.CPU_BF16_QUERIES:
        monkeypatch.setattr(torch.cpu, query, lambda: present, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)


def test_a_cpu_capped_at_avx2_trains_in_fp32_though_it_has_bf16_units(monkeypatch):
    """The laptop emulated on an AMX machine (ATEN_CPU_CAPABILITY=avx2): "auto" must not train in bf16 there."""
    cpu_with_bf16_units(monkeypatch, True, capability="AVX2")
    assert not device.native_bf16("cpu") and device.autocast_dtype("cpu", "auto") is None


@pytest.mark.parametrize("present", [True, False])
def test_auto_is_bf16_exactly_where_the_cpu_has_bf16_units(monkeypatch, present):
    cpu_with_bf16_units(monkeypatch, present)
    assert device.native_bf16("cpu") is present
    assert device.autocast_dtype("cpu", "auto") == (torch.bfloat16 if present else None)
    assert device.autocast_dtype("cpu", "bf16") == torch.bfloat16  # forced: emulated where there are no units
    assert device.autocast_dtype("cpu", "fp32") is None
    assert device.numerics("cpu")["native_bf16"] is present  # so a cache made on one is not read on the other


def test_channels_last_goes_with_bf16_on_a_cpu_with_bf16_units(monkeypatch):
    cpu_with_bf16_units(monkeypatch, True)
    cpu = torch.device("cpu")
    assert memory_format_for(cpu, True, "auto") == torch.channels_last
    assert memory_format_for(cpu, True, "fp32") == torch.contiguous_format
    assert memory_format_for(cpu, False, "auto") == torch.contiguous_format


def test_channels_last_serves_fp32_on_a_cpu_without_bf16_units(monkeypatch):
    cpu_with_bf16_units(monkeypatch, False)
    cpu = torch.device("cpu")
    assert memory_format_for(cpu, True, "auto") == torch.channels_last  # auto is fp32 there
    assert memory_format_for(cpu, True, "fp32") == torch.channels_last
    assert memory_format_for(cpu, False, "fp32") == torch.contiguous_format


def test_a_tiny_strided_shortcut_keeps_fp32_training_contiguous(monkeypatch):
    """ResNet-10 width 4's first shortcut (a 1x1 stride-2 convolution of 4 input channels) crashed the
    process in NHWC fp32 on an AVX2 CPU; width 8's (8 channels) and airbench's (no strided 1x1) did not."""
    cpu_with_bf16_units(monkeypatch, False)
    cpu = torch.device("cpu")
    tiny, wide = models.build_model("resnet10", 10, in_channels=1, width=4), models.build_model("resnet10", 10, width=8)
    assert (tiny_strided_1x1(tiny), tiny_strided_1x1(wide)) == (True, False)
    assert not tiny_strided_1x1(models.build_model("airbench", 10, width=4))
    assert memory_format_for(cpu, True, "fp32", tiny) == torch.contiguous_format
    assert memory_format_for(cpu, True, "fp32", wide) == torch.channels_last
    assert memory_format_for(cpu, True, "bf16", tiny) == torch.channels_last  # autocast takes another path


def test_an_unknown_precision_is_refused_by_name():
    with pytest.raises(ValueError, match="auto, bf16, fp32"):
        TrainConfig(precision="fp16")
    with pytest.raises(ValueError, match="auto, bf16, fp32"):
        device.autocast_dtype("cpu", "int8")


def train(digits, precision: str) -> dict:
    torch.manual_seed(0)
    model = models.build_model("resnet10", 10, in_channels=1, width=4)
    config = TrainConfig(epochs=1, batch_size=64, lr=0.05, precision=precision)
    trained, _ = fit(model, digits, config, device="cpu", seed=0, progress=False)
    return {name: tensor.clone() for name, tensor in trained.state_dict().items()}


def test_bf16_training_is_deterministic_at_a_fixed_thread_count_and_differs_from_fp32(digits):
    first, second = train(digits, "bf16"), train(digits, "bf16")
    assert all(torch.equal(first[name], second[name]) for name in first)
    fp32 = train(digits, "fp32")
    assert any(not torch.equal(first[name], fp32[name]) for name in first if first[name].is_floating_point())


def test_the_precision_is_part_of_a_stage_key(tmp_path):
    from tgkit.study.runcache import RunCache

    cache = RunCache(tmp_path, torch.device("cpu"))
    auto, fp32 = TrainConfig(), dataclasses.replace(TrainConfig(), precision="fp32")
    assert cache.stage("teacher", auto).id != cache.stage("teacher", fp32).id
