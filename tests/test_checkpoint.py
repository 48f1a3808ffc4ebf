"""`tgkit.util.checkpoint`: atomic writes. A write that runs out of space (an OSError ENOSPC from the
write or the fsync, or torch.save's own short-write RuntimeError) is one `DiskFull` line naming the
folder; the previous file stays as it was and no temporary file is left behind."""

import errno
import re

import pytest
import torch

from tgkit.util import checkpoint
from tgkit.util.checkpoint import DiskFull
from tgkit.util.errors import TgkitError

# what torch.save raises when its zip writer's write comes up short (measured on a full tmpfs)
TORCH_SHORT_WRITE = "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"


def short_write(error: BaseException):
    def save(obj, handle):
        handle.write(b"half a checkpoint")
        raise error

    return save


@pytest.mark.parametrize(
    "error, why",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "(No space left on device)"),
        (RuntimeError(TORCH_SHORT_WRITE), "(torch.save could not write it all)"),
    ],
    ids=["ENOSPC", "torch-unexpected-pos"],
)
def test_a_full_disk_keeps_the_previous_checkpoint_and_names_the_folder(tmp_path, monkeypatch, error, why):
    path = tmp_path / "runs" / "stage" / "model.pt"
    checkpoint.save_atomic({"weights": torch.zeros(3)}, path)
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", short_write(error))
    with pytest.raises(DiskFull) as full:
        checkpoint.save_atomic({"weights": torch.ones(3)}, path)
    message = str(full.value)
    assert message.startswith(f"the disk holding {path.parent} is full {why} while writing model.pt; ")
    assert "the previous model.pt is unchanged" in message and "--runs-dir or TGKIT_RUNS" in message
    assert "\n" not in message
    assert isinstance(full.value, TgkitError) and isinstance(full.value, OSError) and full.value.errno == errno.ENOSPC
    assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]


def test_a_full_disk_at_the_fsync_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "table.csv"

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    with pytest.raises(
        DiskFull, match=re.escape(f"the disk holding {tmp_path} is full") + ".* no table.csv was written"
    ):
        checkpoint.write_text_atomic("a,b\n", path)
    assert list(tmp_path.iterdir()) == []


def test_another_failure_is_not_called_a_full_disk(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    monkeypatch.setattr(torch, "save", short_write(RuntimeError("something else")))
    with pytest.raises(RuntimeError, match="something else") as failed:
        checkpoint.save_atomic({}, path)
    assert not isinstance(failed.value, DiskFull) and list(tmp_path.iterdir()) == []
