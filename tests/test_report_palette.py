"""`tgkit.report.palette`: one colour per method, setting and backend, distinct within what one figure
shows, still distinct for readers with a colour-vision deficiency, and the same under every spelling."""

import itertools

import numpy as np
import pytest

from tgkit.report import palette
from tgkit.scorer import CRITERIA
from tgkit.util.errors import InputError

OKABE_ITO = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}
# Machado, Oliveira and Fernandes 2009, severity 1: linear RGB as a dichromat sees it
DICHROMATS = {
    "protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]],
    "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]],
    "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]],
}
# CIE76 distance below which two colours of one legend are hard to tell apart: matplotlib's own red
# and green ("tab:red", "tab:green") come to 7 for a deuteranope, Okabe-Ito's closest pair to 16
LEAST_DISTANCE = 15.0


def linear_rgb(hex_colour: str) -> np.ndarray:
    srgb = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def cielab(linear: np.ndarray) -> np.ndarray:
    """CIELAB (D65 white) of a linear-RGB colour."""
    srgb_to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = srgb_to_xyz @ np.clip(linear, 0, 1)
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def seen_distance(first: str, second: str, dichromacy: str | None = None) -> float:
    """How far apart two colours look, to normal vision or as simulated for a dichromat."""
    matrix = np.array(DICHROMATS[dichromacy]) if dichromacy else np.eye(3)
    first_lab, second_lab = (cielab(matrix @ linear_rgb(colour)) for colour in (first, second))
    return float(np.linalg.norm(first_lab - second_lab))


def test_the_simulation_tells_a_red_green_pair_from_a_safe_one():
    # a deuteranope barely tells matplotlib's red from its green; Okabe-Ito's vermillion and green stay apart
    assert seen_distance("#d62728", "#2ca02c", "deuteranopia") < LEAST_DISTANCE < seen_distance("#d62728", "#2ca02c")
    assert seen_distance(palette.VERMILLION, palette.BLUISH_GREEN, "deuteranopia") > 50
    assert seen_distance("#000000", "#FFFFFF") == pytest.approx(100, abs=0.01)


@pytest.mark.parametrize("group", palette.GROUPS)
@pytest.mark.parametrize("dichromacy", [None, *DICHROMATS])
def test_no_two_names_of_a_group_look_alike_even_to_a_dichromat(group, dichromacy):
    colours = [entry[0] for entry in palette.GROUPS[group].values()]
    assert len(set(colours)) == len(colours), f"two names of {group} share a colour"
    for first, second in itertools.combinations(colours, 2):
        assert seen_distance(first, second, dichromacy) > LEAST_DISTANCE, (group, first, second, dichromacy)


def test_every_colour_is_okabe_ito_or_a_grey():
    colours = {entry[0] for group in palette.GROUPS.values() for entry in group.values()}
    greys = {colour for colour in colours if len({colour[1:3], colour[3:5], colour[5:7]}) == 1}
    assert colours - greys <= OKABE_ITO
    assert greys == {palette.BLACK, palette.GREY, palette.color("pruned by both")}


def test_every_name_the_kit_draws_has_a_colour_and_style():
    from tgkit.deploy.inference import BACKENDS

    names = [*CRITERIA, *(criterion.label for criterion in CRITERIA.values()), "colt", "lth", "dense", "teacher"]
    names += ["no KD", "KD", "KD T=3", "KD T=5", "CE", *BACKENDS, "float32", "bfloat16", "float16", "onnx"]
    for name in names:
        assert palette.color(name).startswith("#") and len(palette.color(name)) == 7
        assert set(palette.style(name)) == {"color", "marker", "linestyle"}


def test_a_name_has_one_colour_whatever_its_spelling_or_group():
    assert palette.color("teacher_guided") == palette.color("teacher-guided") == palette.color("Teacher guided")
    assert palette.color("snip") == palette.color("SNIP") == palette.BLUISH_GREEN
    assert palette.color("KD T=3") == palette.color("KD T=3.0") == palette.color("kd t=3") == palette.BLUE
    assert palette.color("fp32") == palette.color("float32") and palette.color("onnx") == palette.color("onnxruntime")
    assert palette.color("CE") == palette.color("no KD") and palette.color("dense student") == palette.color("dense")
    # "dense" is a method (the dense student's reference line) and a backend: the same black in both
    assert palette.METHODS["dense"] == palette.BACKENDS["dense"]
    shared = set(palette.METHODS) & set(palette.SETTINGS) | set(palette.METHODS) & set(palette.BACKENDS)
    assert all(palette.METHODS[name] == palette.BACKENDS.get(name, palette.SETTINGS.get(name)) for name in shared)


def test_colors_is_a_seaborn_palette_keyed_by_the_names_as_given():
    assert palette.colors(["SNIP", "magnitude", "SNIP"]) == {"SNIP": "#009E73", "magnitude": "#E69F00"}


def test_a_curve_takes_its_colour_from_the_method_and_its_line_from_the_setting():
    assert palette.curve_style("SNIP", "no KD") == {"color": palette.BLUISH_GREEN, "marker": "^", "linestyle": "--"}
    assert palette.curve_style("SNIP", "KD T=5")["linestyle"] == "-"


@pytest.mark.parametrize("name", ["KD T=7", "epsd", ""])
def test_an_unknown_name_is_refused_with_the_known_ones_and_the_fix(name):
    with pytest.raises(InputError, match="no colour for .*teacher guided.*kd t=3.*palette.py"):
        palette.color(name)
