"""The kit's own errors: one base class, so that a command line can tell a problem the user can fix
from a bug.

    TgkitError        the base: its message names the fix; the command lines print it on one line
                      (`error: ...`, exit status 2) where anything else shows its traceback
    InputError        a value the kit refuses (a setting, an argument, a parameter, a file's content);
                      also a ValueError, so `except ValueError` keeps working for library users

The other kit errors subclass TgkitError beside the built-in class they refine: `CheckpointError`
(a damaged file), `DiskFull` (a write out of space), `DatasetNotFound` (a dataset in none of the places
searched), `TrainingDiverged`, `SweepFailed`, `NotebookFailed`, `ExportFormatError`.

    python -m tgkit run ... --debug           a TgkitError shows its traceback too

The configuration dataclasses word their refusals with the checks below (`check_whole`, `check_choice`,
`check_some`): "<name> takes <what it takes>, got <value>", one line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

EXIT_ERROR = 2  # every handled error, as argparse's own usage errors


class TgkitError(Exception):
    """A problem the user can fix: bad input, missing data, a damaged file; the message names the fix."""


class InputError(TgkitError, ValueError):
    """A value the kit refuses; the message says what it takes instead."""


def run_command(command: Callable[[], int | None], *, debug: bool = False) -> int:
    """Run a command line's body: its exit status, or EXIT_ERROR with one `error:` line for a
    TgkitError (re-raised with its traceback when `debug`). Any other exception propagates: a bug
    shows where it happened."""
    try:
        return command() or 0
    except TgkitError as error:
        if debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR


def check_whole(name: str, value: Any, *, least: int = 1, note: str = "", optional: bool = False) -> None:
    """`value` must be an int >= `least` (None too where `optional`); `note` says what the count is."""
    if not (optional and value is None) and (isinstance(value, bool) or not isinstance(value, int) or value < least):
        raise InputError(f"{name} takes a whole number >= {least}{f' ({note})' if note else ''}, got {value!r}")


def check_interval(name: str, value: Any, low: float, high: float, *, closed: str = "()", note: str = "") -> None:
    """`value` must be a number in the interval from `low` to `high`, `closed` naming its brackets: "()" open,
    "[)" with `low`, "[]" with both; `note` says what the number is for."""
    inside = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and (low <= value if closed[0] == "[" else low < value)
        and (value <= high if closed[1] == "]" else value < high)
    )
    if not inside:
        interval = f"{closed[0]}{low:g}, {high:g}{closed[1]}"
        raise InputError(f"{name} takes a number in {interval}{f' ({note})' if note else ''}, got {value!r}")


def check_choice(name: str, value: Any, choices: tuple[str, ...], note: str = "") -> None:
    """`value` must be one of `choices`; `note` follows the list."""
    if value not in choices:
        raise InputError(f"{name} takes one of {', '.join(choices)}{note}, got {value!r}")


def check_some(name: str, values: tuple | None, what: str, example: str) -> None:
    """`values` must hold at least one `what` (None passes: it stands for a default)."""
    if values is not None and not values:
        raise InputError(f"{name} is empty; it takes at least one {what}, e.g. {example}")
