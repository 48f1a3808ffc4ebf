"""The kit's own errors: one base class, so that a command line can tell a problem the user can fix
from a bug.

    TgkitError        the base: its message names the fix; the command lines print it on one line
                      (`error: ...`, exit status 2) where anything else shows its traceback
    InputError        a value the kit refuses (a setting, an argument, a parameter, a file's content);
                      also a ValueError, so `except ValueError` keeps working for library users

The other kit errors subclass TgkitError beside the built-in class they refine: `CheckpointError`
(a damaged file), `DatasetNotFound` (a dataset in none of the places searched), `TrainingDiverged`,
`SweepFailed`, `NotebookFailed`, `ExportFormatError`.

    python -m tgkit run ... --debug           a TgkitError shows its traceback too
"""

from __future__ import annotations

import sys
from collections.abc import Callable

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
