"""`tgkit.study.runcache`: the run cache on its own, with trivial stages: keys derived from the config
dataclass, locks, time across resumes (on a fake clock: exact seconds), damaged folders, no empty folders."""

import json
import multiprocessing
import time
from dataclasses import dataclass, field

import pytest
import torch

from tgkit.hparams import KDConfig, ScoringConfig
from tgkit.study import runcache
from tgkit.util import checkpoint, device


@dataclass
class Settings:
    size: int = 3
    kd: KDConfig = field(default_factory=KDConfig)


def cache(tmp_path, device="cpu") -> runcache.RunCache:
    return runcache.RunCache(tmp_path / "runs", device)


def test_the_key_follows_every_field_of_the_config_dataclass(tmp_path):
    runs = cache(tmp_path)
    base = runs.stage("scores", Settings()).id
    assert runs.stage("scores", Settings()).id == base
    assert runs.stage("scores", Settings(size=4)).id != base
    assert runs.stage("scores", Settings(kd=KDConfig(temperature=5.0))).id != base  # a nested field too
    assert runs.stage("scores", Settings(), upstream=["student-abc"]).id != base
    assert runs.stage("other", Settings()).id != base and base.startswith("scores-")


def test_a_field_added_to_a_config_changes_the_key(tmp_path):
    @dataclass
    class Grown(Settings):
        new_field: int = 0

    runs = cache(tmp_path)
    assert runs.stage("scores", Grown()).id != runs.stage("scores", Settings()).id
    stage = runs.stage("scores", ScoringConfig())
    assert stage.settings["config"]["snip_epochs"] == 1 and stage.settings["config"]["type"] == "ScoringConfig"


def test_the_key_holds_the_device_type_and_the_cpu_thread_count(tmp_path):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = cache(tmp_path).stage("teacher", Settings())
        torch.set_num_threads(2)
        two = cache(tmp_path).stage("teacher", Settings())
    finally:
        torch.set_num_threads(threads)
    assert one.id != two.id
    assert one.settings["numerics"] == {"device": "cpu", "cpu_threads": 1, "native_bf16": device.native_bf16("cpu")}
    on_gpu = cache(tmp_path, "cuda").stage("teacher", Settings())  # keying touches no GPU
    assert on_gpu.settings["numerics"] == {"device": "cuda"} and on_gpu.id not in (one.id, two.id)


def test_a_stage_computes_once_and_is_read_back(tmp_path):
    calls = []

    def compute(stage):
        calls.append(1)
        stage.save({"w": torch.ones(2)}, "product.pt")
        return {"answer": 42}

    stage = cache(tmp_path).stage("teacher", Settings())
    first = stage.run(compute)
    again = cache(tmp_path).stage("teacher", Settings()).run(compute)
    assert calls == [1]
    assert (first["answer"], first["cached"], again["answer"], again["cached"]) == (42, False, 42, True)
    assert again["seconds"] == first["seconds"] and again["device"].startswith("cpu")
    assert torch.equal(stage.load("product.pt")["w"], torch.ones(2))
    settings = json.loads((stage.folder / runcache.SETTINGS).read_text())
    assert settings["config"]["size"] == 3 and not (stage.folder / runcache.PROGRESS).exists()


def test_a_failed_start_leaves_no_folder_but_keeps_what_a_resume_needs(tmp_path):
    runs = cache(tmp_path)

    def fails(stage):
        raise RuntimeError("bad input found late")

    stage = runs.stage("teacher", Settings())
    with pytest.raises(RuntimeError):
        stage.run(fails)
    assert not stage.folder.exists()

    def fails_after_a_checkpoint(stage):
        stage.save({"epoch": 1}, "training.ckpt")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stage.run(fails_after_a_checkpoint)
    assert (stage.folder / "training.ckpt").exists() and not stage.done


def test_a_resumed_stage_counts_the_time_of_every_attempt(tmp_path, fake_clock):
    """30 s up to the checkpoint are kept, the 20 s after it are lost with the kill, the resumed attempt
    adds its 10 s: the stage took 40 s. The clock moves only where the test moves it."""
    stage = cache(tmp_path).stage("teacher", Settings())

    def killed_after_one_epoch(stage):
        fake_clock.advance(30.0)
        stage.save({"epoch": 1}, "training.ckpt")
        stage.checkpointed()
        fake_clock.advance(20.0)  # lost: after the last checkpoint
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stage.run(killed_after_one_epoch)
    assert json.loads((stage.folder / runcache.PROGRESS).read_text()) == {"seconds": 30.0}

    def resumed(stage):
        fake_clock.advance(10.0)
        return {}

    fake_clock.advance(500.0)  # between the attempts: no stage is running, nothing is counted
    result = cache(tmp_path).stage("teacher", Settings()).run(resumed)
    assert result["seconds"] == 40.0 and not result["cached"]
    assert not (stage.folder / runcache.PROGRESS).exists()  # done: the next read takes the result's seconds
    assert cache(tmp_path).stage("teacher", Settings()).run(resumed)["seconds"] == 40.0


def test_a_damaged_result_or_product_names_the_folder_to_delete_and_destroys_nothing(tmp_path):
    stage = cache(tmp_path).stage("teacher", Settings())
    stage.run(lambda stage: {"ok": stage.save(1, "model.pt") is not None})
    (stage.folder / "model.pt").write_bytes(b"\x00truncated")
    with pytest.raises(checkpoint.CheckpointError, match=f"rm -r {stage.folder}"):
        stage.load("model.pt")
    assert (stage.folder / "model.pt").read_bytes() == b"\x00truncated"
    (stage.folder / runcache.RESULT).write_bytes(b"garbage")
    with pytest.raises(checkpoint.CheckpointError, match="damaged"):
        stage.run(lambda stage: {})
    assert (stage.folder / runcache.RESULT).read_bytes() == b"garbage"
    with pytest.raises(checkpoint.CheckpointError, match="missing|does not exist"):
        stage.load("never-written.pt")


def test_a_file_as_the_cache_is_refused(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="--runs-dir"):
        cache(tmp_path)


def _compute_slowly(root: str, results) -> None:
    torch.set_num_threads(1)

    def compute(stage):
        time.sleep(1.0)
        return {"by": multiprocessing.current_process().name}

    result = runcache.RunCache(root, "cpu").stage("teacher", Settings()).run(compute)
    results.put((result["by"], result["cached"]))


def test_two_processes_on_one_cache_compute_a_stage_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=_compute_slowly, args=(str(tmp_path / "runs"), results), name=f"worker-{i}")
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    outcomes = sorted(results.get(timeout=5) for _ in workers)
    # one computed it; the other waited for the lock and read the very same result
    assert [cached for _, cached in outcomes] == [False, True]
    assert outcomes[0][0] == outcomes[1][0]
