"""A worker process that ends when the process it works for does.

A local sweep (`python -m tgkit sweep`) starts its workers through submitit, which puts a controller
process between them. Killed outright (`kill -9`, an out-of-memory kill), the sweep cannot tell them
to stop, and they would run on as orphans for hours, holding the cores and the run cache's locks.
`end_with(pid)`, called first thing in a worker, watches the sweep's process from a daemon thread and
ends the worker as soon as it is gone. Whatever the worker was writing is written atomically (see
`util.checkpoint`), so an end at any moment leaves the previous files intact; the stage reruns later.

Linux gives a handle on the process itself (a pidfd): it becomes readable when that process ends,
never confused with a later process of the same number, and waiting on it costs nothing. Elsewhere
the thread asks every `poll_s` seconds whether the number still exists.
"""

from __future__ import annotations

import os
import select
import sys
import threading
import time

EXIT_ORPHANED = 3


def end_with(pid: int, *, poll_s: float = 1.0) -> threading.Thread:
    """End this process (exit status `EXIT_ORPHANED`) once the process `pid` has ended; returns the
    watching thread. A `pid` already gone ends this process at once."""
    watcher = threading.Thread(target=_watch, args=(pid, poll_s), name=f"lifeline-{pid}", daemon=True)
    watcher.start()
    return watcher


def _watch(pid: int, poll_s: float) -> None:
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        _end(pid)
    except (AttributeError, OSError):  # no pidfd here (not Linux, an old kernel): ask by number
        while _exists(pid):
            time.sleep(poll_s)
        _end(pid)
    else:
        select.select([handle], [], [])  # readable once the process has ended
        _end(pid)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _end(pid: int) -> None:
    print(f"tgkit: the sweep process {pid} has ended; this worker stops with it", file=sys.stderr, flush=True)
    os._exit(EXIT_ORPHANED)  # from a thread, only _exit ends the process without waiting for the main one
