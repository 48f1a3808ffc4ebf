"""`tgkit.bench.recipe` and `hparams.cpu_recipe`: airbench's settings converted for the kit's mean loss, every
ablation variant a valid configuration that differs from the recipe where it says, a bad variant refused."""

import dataclasses

import pytest

from tgkit import hparams
from tgkit.bench import recipe


def test_the_recipe_converts_airbench_s_summed_loss_settings_to_the_kit_s_mean_loss():
    """airbench: lr 11.5 and weight decay 0.0153 per 1,024 images of a summed loss, momentum 0.85; SGD steps
    lr * (batch * mean gradient + wd' * w), so the mean-loss lr is 11.5 * 512 / (1024 * (1 + 1 / 0.15)) and
    the weight decay 0.0153 / 11.5."""
    config = hparams.cpu_recipe(10)
    assert config.lr == pytest.approx(11.5 * 512 / (1024 * (1 + 1 / 0.15)), rel=2e-3)
    assert config.weight_decay == pytest.approx(0.0153 / 11.5, rel=2e-3)
    assert (config.batch_size, config.momentum, config.nesterov, config.label_smoothing) == (512, 0.85, True, 0.0)
    assert config.warmup_epochs == 2.3 and hparams.cpu_recipe(2, hparams.RetrainConfig).warmup_epochs == 0.46


@pytest.mark.parametrize("key", list(recipe.VARIANTS))
def test_each_variant_changes_what_it_names_and_nothing_else(key):
    config = hparams.profile("quick")
    spec, training, padding = recipe.variant_setup(config, recipe.VARIANTS[key][1])
    base_spec, base_training, base_padding = recipe.variant_setup(config, {})
    changed = {
        f.name for f in dataclasses.fields(training) if getattr(training, f.name) != getattr(base_training, f.name)
    }
    change = recipe.VARIANTS[key][1]
    if "training" in change:  # the old teacher: its own network and training, for as many epochs
        assert spec != base_spec and training.epochs == base_training.epochs and "batch_size" in changed
    else:
        assert changed == set(change) & set(hparams.TrainConfig.__dataclass_fields__)
        assert spec == base_spec and (padding != base_padding) == ("crop_padding" in change)


def test_an_unknown_variant_is_refused_naming_the_choices(capsys):
    assert recipe.main(["--only", "no-such-trick"]) == 2
    assert "--only no-such-trick: unknown variant; choose among recipe, no-whitening" in capsys.readouterr().err
