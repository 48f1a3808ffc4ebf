"""One colour, marker and line style per method, per setting and per backend, the same in every figure.

    color("magnitude")                   "#E69F00": the same orange in notebooks 02, 03, 04 and 06
    style("no KD")                       {"color": ..., "marker": ..., "linestyle": ...} for `plot(**style)`
    colors(["SNIP", "random"])           {name: colour} for seaborn's `palette=`
    color("only the reference")          two masks compared: kept by both, by one only, by neither
    curve_style("SNIP", "KD T=3")        a method's colour and marker with a setting's line style

The colours are Okabe and Ito's palette (https://jfly.uni-koeln.de/color/, also Wong 2011, Nature
Methods 8:441), chosen so that people with any of the common colour-vision deficiencies can still
tell its eight colours apart, plus a neutral grey for what is there for reference only. Red and green
never meet: its orange-red ("vermillion") and bluish green stay apart under deuteranopia and
protanopia, which `tests/test_report_palette.py` checks by simulating them.

Names are matched whatever their spelling in the kit: the registry's key or the figure's label
("teacher_guided" or "teacher-guided", "snip" or "SNIP"), "KD T=3" or "KD T=3.0", and a few aliases
(`ALIASES`: "fp32" is float32, "onnx" is onnxruntime). A name the palette does not know raises an
`InputError` that says where to add it, rather than falling back to a colour some other figure uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tgkit.util.errors import InputError

# Okabe-Ito, by the names its authors give, and a neutral grey
BLACK, ORANGE, SKY_BLUE, BLUISH_GREEN = "#000000", "#E69F00", "#56B4E9", "#009E73"
BLUE, VERMILLION, REDDISH_PURPLE, GREY = "#0072B2", "#D55E00", "#CC79A7", "#555555"

# one entry per name: (colour, marker, line style); a group is what one figure may show side by side,
# so within a group no two names share a colour
METHODS = {
    "teacher guided": (BLUE, "o", "-"),
    "magnitude": (ORANGE, "s", "-"),
    "snip": (BLUISH_GREEN, "^", "-"),
    "random": (GREY, "v", ":"),
    "colt": (REDDISH_PURPLE, "D", "-"),
    "lth": (VERMILLION, "P", "-"),
    "dense": (BLACK, "", "--"),  # the dense student, drawn as a reference line
    "teacher": (SKY_BLUE, "", "-."),
}
SETTINGS = {  # how a pruned network is retrained: without KD, with KD, and KD at each temperature
    "no kd": (GREY, "x", "--"),
    "kd": (BLACK, "o", "-"),
    "kd t=1": (SKY_BLUE, "o", "-"),
    "kd t=2": (BLUISH_GREEN, "o", "-"),
    "kd t=3": (BLUE, "o", "-"),
    "kd t=4": (ORANGE, "o", "-"),
    "kd t=5": (VERMILLION, "o", "-"),
    "kd t=10": (REDDISH_PURPLE, "o", "-"),
}
BACKENDS = {  # how a network runs: its number format, or the engine that runs it
    "dense": (BLACK, "", "--"),
    "masked dense": (BLUE, "o", "-"),
    "sparse": (VERMILLION, "s", "-"),
    "onnxruntime": (BLUISH_GREEN, "^", "-"),
    "float32": (SKY_BLUE, "o", "-"),
    "bfloat16": (ORANGE, "s", "--"),  # dashed and square, so that it does not hide under float16
    "float16": (REDDISH_PURPLE, "D", ":"),
}
ORDERS = {  # CA-KLD's order of normalising the logits and dividing them by T (notebook 01)
    "paper": (BLUE, "o", "-"),  # norm(z) / T, as the paper writes it: the kit's default
    "authors": (VERMILLION, "s", "--"),  # norm(z / T), as the authors' code runs it
    "plain": (BLACK, "", ":"),  # z / T without normalisation (Hinton et al.'s KD): a reference line
}
COMPARISON = {  # two masks side by side (notebook 02's explorer): which of them keeps a weight
    "kept by both": (REDDISH_PURPLE, "o", "-"),
    "only the reference": (VERMILLION, "^", "-"),
    "only the compared": (SKY_BLUE, "v", "-"),
    "pruned by both": ("#DDDDDD", ".", "-"),  # the background: lighter than anything else drawn
}
GROUPS = {"method": METHODS, "setting": SETTINGS, "backend": BACKENDS, "order": ORDERS, "comparison": COMPARISON}
ALIASES = {
    "dense student": "dense",
    "fp32": "float32",
    "bf16": "bfloat16",
    "fp16": "float16",
    "onnx": "onnxruntime",
    "ce": "no kd",
    "one shot": "teacher guided",  # the one-shot method of notebook 04's tables is teacher-guided pruning  # the sweep's retraining column: "CE" (cross-entropy only) or "KD"
}
# one mask (notebook 02): the global threshold's line
THRESHOLD = BLACK


def canonical(name: str) -> str:
    """ "Teacher-guided" -> "teacher guided", "KD T=3.0" -> "kd t=3", "fp32" -> "float32", "COLT (P=2)" ->
    "colt": the key a name is filed under, whichever spelling a table or a registry uses (a trailing
    parenthesis, a run's detail, names no colour of its own)."""
    key = re.sub(r"\s*\([^()]*\)$", "", str(name).strip().lower())
    key = re.sub(r"[\s_\-]+", " ", key)
    key = re.sub(r"t=(\d+(?:\.\d+)?)", lambda match: f"t={float(match.group(1)):g}", key)
    return ALIASES.get(key, key)


def _entry(name: str) -> tuple[str, str, str]:
    key = canonical(name)
    for group in GROUPS.values():
        if key in group:
            return group[key]
    known = ", ".join(dict.fromkeys(k for group in GROUPS.values() for k in group))
    raise InputError(
        f"the palette has no colour for {name!r}; name one of {known}, or give it a colour in tgkit/report/palette.py"
    )


def color(name: str) -> str:
    """The colour (hex) of a method, setting or backend, e.g. color("SNIP") == "#009E73"."""
    return _entry(name)[0]


def style(name: str) -> dict[str, str]:
    """Keyword arguments for `axes.plot`: color, marker and linestyle of a method, setting or backend."""
    colour, marker, linestyle = _entry(name)
    return {"color": colour, "marker": marker, "linestyle": linestyle}


def colors(names: Iterable[str]) -> dict[str, str]:
    """{name: colour} for each name as given: seaborn's `palette=` for a `hue` column of these names."""
    return {name: color(name) for name in dict.fromkeys(names)}


def curve_style(method: str, setting: str) -> dict[str, str]:
    """A curve of one method under one setting: the method's colour and marker, the setting's line
    style (no KD dashed, KD solid), so that colour always means the method."""
    return {**style(method), "linestyle": style(setting)["linestyle"]}
