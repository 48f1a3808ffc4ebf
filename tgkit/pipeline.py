"""The end-to-end run, stage by stage, cached and resumable: what the CLI and the notebooks call.

    teacher -> dense student -> importance scores -> one-shot global masks -> retraining (KD or not)

Every stage writes its products into a folder of the run cache named by the stage and a hash of
everything it depends on: its own settings and the keys of the stages before it. The same
configuration therefore reuses a stage, a changed one never does, and notebooks share each other's
work. Training stages checkpoint every epoch, so a run killed half-way resumes where it stopped.
All files are written atomically (`checkpoint`). Each stage records the wall-clock it took when it
ran (GPU synchronised, data decoding excluded) and the device, for the latency comparison.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, replace
from functools import cached_property
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from tgkit import checkpoint, data as datasets, masker, models, scorer
from tgkit.profiles import ModelSpec, RunConfig
from tgkit.retrainer import retrain
from tgkit.train import default_device, evaluate, fit, synchronize

CRITERIA = tuple(scorer.SCORERS)


def config_key(settings: dict) -> str:
    """A short stable hash of a JSON-able settings dict."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


class Experiment:
    """One configuration's run; each method computes its stage once and caches it under `runs_dir`
    (default: $TGKIT_RUNS, else `<data dir>/runs`)."""

    def __init__(self, config: RunConfig, *, runs_dir: str | Path | None = None,
                 device: str | torch.device | None = None, progress: bool = True):
        self.config = config
        self.runs_dir = Path(runs_dir or os.environ.get("TGKIT_RUNS") or datasets.default_data_dir() / "runs")
        self.device = torch.device(device) if device else default_device()
        self.progress = progress
        self.timings: list[dict] = []  # one row per stage used by this experiment: seconds, cached or not

    # ---- data -------------------------------------------------------------------------------
    @cached_property
    def data(self) -> datasets.ImageData:
        c = self.config
        loaded = datasets.load_dataset(c.dataset, train_subset=c.train_subset, test_subset=c.test_subset,
                                       val_fraction=c.val_fraction, seed=c.seed, progress=self.progress)
        return loaded.to(self.device)  # resident on the GPU: no host-to-device copy per epoch

    def _data_settings(self) -> dict:
        c = self.config
        return {"dataset": c.dataset, "train_subset": c.train_subset, "test_subset": c.test_subset,
                "val_fraction": c.val_fraction, "seed": c.seed}

    # ---- cache ------------------------------------------------------------------------------
    def _stage_dir(self, stage: str, settings: dict) -> Path:
        folder = self.runs_dir / f"{stage}-{config_key(settings)}"
        if not (folder / "settings.json").exists():
            checkpoint.write_json_atomic(settings, folder / "settings.json")
        return folder

    def _record(self, stage: str, result: dict, cached: bool) -> dict:
        self.timings.append({"stage": stage, "seconds": result["seconds"], "cached": cached,
                             "device": result["device"]})
        return {**result, "cached": cached}

    def _cached(self, stage: str, settings: dict, compute) -> tuple[Path, dict]:
        """Return the stage folder and its `result.pt`, computing both with `compute(folder)` if absent."""
        folder = self._stage_dir(stage, settings)
        result_file = folder / "result.pt"
        if result_file.exists():
            return folder, self._record(stage, checkpoint.load_checkpoint(result_file), cached=True)
        self.data  # decoding the dataset is a one-off cost, never part of a stage's time
        synchronize(self.device)
        started = time.perf_counter()
        result = compute(folder)
        synchronize(self.device)
        result.update(seconds=time.perf_counter() - started, device=device_name(self.device))
        checkpoint.save_atomic(result, result_file)
        return folder, self._record(stage, result, cached=False)

    def _build(self, spec: ModelSpec, seed_offset: int) -> nn.Module:
        torch.manual_seed(self.config.seed * 1000 + seed_offset)
        channels = self.data.image_shape[0]
        return models.build_model(spec.arch, self.data.num_classes, in_channels=channels, width=spec.width)

    def _load_model(self, spec: ModelSpec, path: Path) -> nn.Module:
        model = self._build(spec, 0)
        model.load_state_dict(checkpoint.load_checkpoint(path))
        return model.to(self.device).eval()

    # ---- stage 1 and 2: dense networks --------------------------------------------------------
    def _teacher_settings(self) -> dict:
        c = self.config
        return {"data": self._data_settings(), "model": asdict(c.teacher), "training": asdict(c.teacher_training)}

    def _student_settings(self) -> dict:
        c = self.config
        settings = {"data": self._data_settings(), "model": asdict(c.student), "training": asdict(c.student_training)}
        if c.student_kd is not None:
            settings.update(kd=asdict(c.student_kd), teacher=self._teacher_settings())
        return settings

    def _train_dense(self, role: str, spec: ModelSpec, settings: dict, teacher: nn.Module | None) -> dict:
        config = self.config.teacher_training if role == "teacher" else self.config.student_training

        def compute(folder: Path) -> dict:
            model, history = fit(self._build(spec, 1 if role == "teacher" else 2), self.data, config,
                                 teacher=teacher, kd=self.config.student_kd if teacher is not None else None,
                                 device=self.device, seed=self.config.seed, resume=folder / "training.ckpt",
                                 desc=f"{role} ({spec.arch})", progress=self.progress)
            checkpoint.save_atomic(model.state_dict(), folder / "model.pt")
            return {"history": history, "test_accuracy": evaluate(model, self.data, "test", device=self.device)}

        folder, result = self._cached(role, settings, compute)
        result["model"] = self._load_model(spec, folder / "model.pt")
        return result

    def teacher_result(self) -> dict:
        """The trained teacher: {"model", "history", "test_accuracy", "seconds", "device"}."""
        return self._train_dense("teacher", self.config.teacher, self._teacher_settings(), None)

    def teacher(self) -> nn.Module:
        return self.teacher_result()["model"]

    def student_result(self) -> dict:
        """The dense student, trained with KD from the teacher when `config.student_kd` is set."""
        teacher = self.teacher() if self.config.student_kd is not None else None
        return self._train_dense("student", self.config.student, self._student_settings(), teacher)

    def student(self) -> nn.Module:
        return self.student_result()["model"]

    # ---- stage 3 and 4: importance and masks -------------------------------------------------
    def _score_settings(self, criterion: str, temperature: float | None, seed: int) -> dict:
        if criterion not in scorer.SCORERS:
            raise ValueError(f"unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
        settings = {"criterion": criterion, "student": self._student_settings()}
        s = self.config.scoring
        if criterion == "teacher_guided":
            kd = asdict(s.kd) | ({"temperature": temperature} if temperature else {})
            settings.update(teacher=self._teacher_settings(), epochs=s.epochs, ema=s.ema, variant=s.variant,
                            batch_size=s.batch_size, kd=kd)
        elif criterion == "snip":
            settings.update(ema=s.ema, batch_size=s.batch_size)
        elif criterion == "random":
            settings.update(seed=seed)
        return settings

    def scores(self, criterion: str = "teacher_guided", *, temperature: float | None = None,
               seed: int | None = None) -> dict[str, torch.Tensor]:
        """Importance of every prunable weight of the dense student by `criterion` (see `scorer.SCORERS`)."""
        seed = self.config.seed if seed is None else seed
        settings = self._score_settings(criterion, temperature, seed)
        s = self.config.scoring

        def compute(folder: Path) -> dict:
            student = self.student()
            train = self.data.batches("train", s.batch_size, device=self.device, seed=self.config.seed)
            if criterion == "teacher_guided":
                kd = s.kd
                scores = scorer.teacher_guided_scores(
                    student, self.teacher(), train, epochs=s.epochs, ema=s.ema, alpha=kd.alpha,
                    temperature=temperature or kd.temperature, beta=kd.beta, order=kd.order, variant=s.variant,
                    progress=self.progress)
            elif criterion == "snip":
                scores = scorer.snip_scores(student, train, ema=s.ema, progress=self.progress)
            elif criterion == "magnitude":
                scores = scorer.magnitude_scores(student)
            else:
                scores = scorer.random_scores(student, seed=seed)
            checkpoint.save_atomic(scores, folder / "scores.pt")
            return {}

        folder, _ = self._cached(f"scores-{criterion}", settings, compute)
        return checkpoint.load_checkpoint(folder / "scores.pt")

    def masks(self, criterion: str, sparsity: float, *, over: str = "all", temperature: float | None = None,
              seed: int | None = None) -> dict[str, torch.Tensor]:
        """One-shot global masks at `sparsity`, measured `over` "all" weights (the paper's tables) or "prunable"."""
        scores = self.scores(criterion, temperature=temperature, seed=seed)
        ratio = masker.sparsity_for_target(self.student(), sparsity, over=over)
        return masker.global_masks(scores, ratio)

    # ---- stage 5: retraining -------------------------------------------------------------------
    def pruned_result(self, criterion: str, sparsity: float, *, kd: bool = True, over: str = "all",
                      temperature: float | None = None, seed: int | None = None) -> dict:
        """Prune the dense student at `sparsity` by `criterion` and retrain it, with KD or without.

        `temperature` is the KD retraining temperature (default `config.kd`); scoring keeps its own.
        Returns {"model", "masks", "history", "test_accuracy", "sparsity_all", "sparsity_prunable",
        "pruning_seconds", "seconds" (pruning + retraining), "device"}.
        """
        seed = self.config.seed if seed is None else seed
        kd_config = replace(self.config.kd, temperature=temperature or self.config.kd.temperature) if kd else None
        settings = {"scores": self._score_settings(criterion, None, seed), "sparsity": sparsity, "over": over,
                    "retraining": asdict(self.config.retraining), "seed": seed,
                    "kd": asdict(kd_config) if kd else None}
        student, scores = self.student(), self.scores(criterion, seed=seed)
        teacher = self.teacher() if kd else None

        def compute(folder: Path) -> dict:
            started = time.perf_counter()
            masks = masker.global_masks(scores, masker.sparsity_for_target(student, sparsity, over=over))
            pruning_seconds = time.perf_counter() - started
            model, history = retrain(student, masks, self.data, teacher=teacher, config=self.config.retraining,
                                     kd=kd_config, device=self.device, seed=seed, resume=folder / "training.ckpt",
                                     progress=self.progress,
                                     desc=f"{criterion} {sparsity:.2%} {'KD' if kd else 'no KD'}")
            masker.save_pruned(folder / "model.pt", model, masks)
            return {"history": history, "test_accuracy": evaluate(model, self.data, "test", device=self.device),
                    "sparsity_all": masker.global_sparsity(model, masks, over="all"),
                    "sparsity_prunable": masker.global_sparsity(model, masks, over="prunable"),
                    "pruning_seconds": pruning_seconds}

        folder, result = self._cached("pruned", settings, compute)
        model, masks, _ = masker.load_pruned(folder / "model.pt", self._build(self.config.student, 0))
        return {**result, "model": model.to(self.device).eval(), "masks": masks}

    # ---- the CLI's table ---------------------------------------------------------------------
    @property
    def device_name(self) -> str:
        return device_name(self.device)

    def summary_table(self, sparsities: tuple[float, ...] | None = None, *, over: str = "all") -> pd.DataFrame:
        """Teacher, dense student, teacher-guided with and without KD at each sparsity, and the
        magnitude and random baselines (KD retraining) at the first sparsity."""
        sparsities = sparsities or self.config.sparsities
        rows = []

        def row(method: str, kd: str, result: dict, sparsity_all: float, sparsity_prunable: float) -> None:
            rows.append({"method": method, "retraining": kd, "sparsity_all": sparsity_all,
                         "sparsity_prunable": sparsity_prunable, "test_accuracy": result["test_accuracy"],
                         "minutes": result["seconds"] / 60})

        row(f"teacher ({self.config.teacher.arch})", "-", self.teacher_result(), 0.0, 0.0)
        row(f"dense student ({self.config.student.arch})", "-", self.student_result(), 0.0, 0.0)
        runs = [("teacher_guided", s, kd) for s in sparsities for kd in (True, False)]
        runs += [(criterion, sparsities[0], True) for criterion in ("magnitude", "random")]
        for criterion, sparsity, kd in runs:
            result = self.pruned_result(criterion, sparsity, kd=kd, over=over)
            row(criterion.replace("_", "-"), "KD" if kd else "CE", result, result["sparsity_all"],
                result["sparsity_prunable"])
        return pd.DataFrame(rows)
