"""The README's "Your own model" block, run as it stands: a torchvision MobileNetV3 student and a teacher
whose forward returns (logits, features), on DataLoaders, through scoring, global masks, KD retraining,
export and reload. The block asserts that the reloaded network's outputs equal the retrained one's;
here the invariants around it are checked: the masks' exact count, pruned weights still zero."""

import re
from pathlib import Path

import pytest
import torch

from tgkit import masker

README = Path(__file__).resolve().parents[1] / "README.md"


def own_model_block() -> str:
    section = README.read_text(encoding="utf-8").split("### Your own model", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_readmes_own_model_block_runs_end_to_end():
    namespace: dict = {"__name__": "readme_own_model"}
    exec(compile(own_model_block(), "README.md (Your own model)", "exec"), namespace)
    student, masks, loaded = namespace["student"], namespace["masks"], namespace["loaded"]
    assert masker.count_pruned(masks) == masker.count_weights(masks) // 2
    parameters = dict(student.named_parameters())
    assert all(torch.count_nonzero(parameters[name][~keep]) == 0 for name, keep in masks.items())
    assert type(loaded).__name__ == "MobileNetV3"
    assert namespace["evaluate"](student, namespace["data"]) > 0.5  # ten classes: far above chance
