"""The end-to-end run, stage by stage, cached and resumable: what the CLI and the notebooks call.

    teacher -> dense student -> importance scores -> one-shot global masks -> retraining (KD or not)
    and, on the same data, the iterative baseline COLT (or LTH)

The teacher's stage keeps snapshots at the epochs of `config.teacher_help.snapshot_epochs`: teachers of
graded strength from one training (`teacher_snapshots`); scores and KD retraining can name one of them
(`teacher_epoch`), each keyed in the run cache like any other setting.

Every stage is a stage of the run cache (`tgkit.study.runcache`), keyed by its own dataclass of
`tgkit.hparams` (`NetworkTraining`, `ScoringStage`, `PruningStage`, `ColtConfig`), the stages it builds
on and the device: the same configuration reuses a stage, a changed one never does, notebooks share
each other's work, and two processes never compute one stage twice. Training stages write resume
checkpoints (`CHECKPOINT_EVERY_S`), so a run killed half-way resumes where it stopped. The arguments of a request (criterion,
sparsity, temperature) are checked before any stage starts, so a bad one leaves nothing behind.

Each stage records the wall-clock it took when it ran (GPU synchronised, data decoding excluded,
summed over resumes) and the device: `Experiment.timings` has one row per stage this experiment used,
for the latency comparison.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from tgkit import colt, data, losses, masker, models, scorer
from tgkit.hparams import ColtConfig, KDConfig, ModelSpec, NetworkTraining, PruningStage, RunConfig, ScoringStage
from tgkit.retrainer import retrain
from tgkit.study import snapshots, summary
from tgkit.study.runcache import RunCache, Stage
from tgkit.train import check_batch_fits, evaluate, fit
from tgkit.util import checkpoint, locations
from tgkit.util.device import default_device, device_name, stopwatch
from tgkit.util.errors import InputError

# offsets of the initial-weight seeds, seed * 1000 + offset: teacher, dense student (and COLT's networks)
TEACHER_INIT, STUDENT_INIT = 1, 2
# Seconds between resume checkpoints, by device type. A GPU trains a CIFAR epoch in seconds, and a
# checkpoint (model, optimizer state and best weights: three copies of the network, 134 MB for the
# ResNet-18 student) costs a copy to the host and a write each time: at most one a minute there, so a
# kill loses at most a minute. A CPU epoch takes minutes: a checkpoint after every one costs little.
CHECKPOINT_EVERY_S = {"cuda": 60.0, "cpu": 0.0}


class Experiment:
    """One configuration's run; each method computes its stage once and caches it under `runs_dir`
    (default: `tgkit.util.locations.runs_dir()`: $TGKIT_RUNS, else `<data dir>/runs`)."""

    def __init__(
        self,
        config: RunConfig,
        *,
        runs_dir: str | Path | None = None,
        device: str | torch.device | None = None,
        progress: bool = True,
    ):
        self.config = config
        self.runs_dir = Path(runs_dir) if runs_dir else locations.runs_dir()
        self.device = torch.device(device) if device else default_device()
        self.cache = RunCache(self.runs_dir, self.device)
        self.progress = progress
        self.timings: list[dict] = []  # one row per stage used: seconds, whether read from the cache, device
        self.checkpoint_every_s = CHECKPOINT_EVERY_S.get(self.device.type, 0.0)

    @property
    def device_name(self) -> str:
        return device_name(self.device)

    # ---- data and networks ----------------------------------------------------------------------
    @cached_property
    def data(self) -> data.ImageData:
        c = self.config
        loaded = data.load_dataset(
            c.dataset,
            train_subset=c.train_subset,
            test_subset=c.test_subset,
            val_fraction=c.val_fraction,
            seed=c.seed,
            progress=self.progress,
            augment_flip=c.augment_flip,
            augment_crop_padding=c.augment_crop_padding,
        )
        # a batch larger than the training set is refused here, before any stage trains (`fit` refuses it too)
        for name in ("teacher_training", "student_training", "retraining"):
            check_batch_fits(getattr(c, name).batch_size, len(loaded.train_y), loaded.name, f"{name}.batch_size")
        return loaded.to(self.device)  # resident on the GPU: no host-to-device copy per epoch

    @cached_property
    def data_id(self) -> str:
        content = data.content_fingerprint(self.config.dataset, locations.data_dir())  # image folders only
        return self.cache.stage("data", replace(self.config.data, content=content)).id

    @cached_property
    def architecture(self) -> nn.Module:
        """The student's architecture without weights (on the meta device): what a sparsity is counted on."""
        _ = self.data  # loaded outside the meta device
        with torch.device("meta"):
            return self._architecture(self.config.student)

    def _architecture(self, spec: ModelSpec) -> nn.Module:
        return models.build_model(
            spec.arch, self.data.num_classes, in_channels=self.data.image_shape[0], width=spec.width
        )

    def _build(self, spec: ModelSpec, init_seed: int) -> nn.Module:
        """The network with the initial weights `init_seed` draws; torch's global generator is left as it
        was, so that loading a cached network (built, then overwritten) changes no other draw."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            return self._architecture(spec)

    def _init_seed(self, offset: int) -> int:
        return self.config.seed * 1000 + offset

    def _run(self, stage: Stage, compute) -> dict:
        """Run a stage (the data decoded first: a one-off cost, never part of a stage's time) and keep
        its timing row."""
        _ = self.data
        result = stage.run(compute)
        if not any(row["id"] == stage.id for row in self.timings):
            self.timings.append(
                {
                    "stage": stage.name,
                    "id": stage.id,
                    "seconds": result["seconds"],
                    "cached": result["cached"],
                    "device": result["device"],
                }
            )
        return {**result, "stage": stage.id}

    # ---- stage 1 and 2: dense networks --------------------------------------------------------
    def _teacher_stage(self) -> Stage:
        c = self.config
        kept = snapshots.kept_epochs(c) or None  # None keeps the key of a teacher without snapshots
        return self.cache.stage(
            "teacher",
            NetworkTraining(c.teacher, c.teacher_training, None, self._init_seed(TEACHER_INIT), kept),
            upstream=[self.data_id],
        )

    def _student_stage(self) -> Stage:
        c = self.config
        upstream = [self.data_id] + ([self._teacher_stage().id] if c.student_kd is not None else [])
        return self.cache.stage(
            "student",
            NetworkTraining(c.student, c.student_training, c.student_kd, self._init_seed(STUDENT_INIT)),
            upstream=upstream,
        )

    def _train_dense(self, role: str, stage: Stage, teacher: nn.Module | None) -> dict:
        settings: NetworkTraining = stage.config

        def compute(stage: Stage) -> dict:
            model, history = fit(
                self._build(settings.model, settings.init_seed),
                self.data,
                settings.training,
                teacher=teacher,
                kd=settings.kd,
                device=self.device,
                seed=self.config.seed,
                resume=stage.path("training.ckpt"),
                desc=f"{role} ({settings.model.arch})",
                progress=self.progress,
                after_checkpoint=stage.checkpointed,
                checkpoint_every_s=self.checkpoint_every_s,
                after_epoch=snapshots.saver(stage, self.data, self.device),
            )
            stage.save(model.state_dict(), "model.pt")
            accuracy = evaluate(model, self.data, "test", device=self.device, precision=settings.training.precision)
            return {"history": history, "test_accuracy": accuracy}

        result = self._run(stage, compute)
        model = self._build(settings.model, self._init_seed(0))
        try:
            model.load_state_dict(stage.load("model.pt"))
        except RuntimeError as error:  # a state dict of another shape: not this stage's file
            raise stage.damaged(error) from error
        return {**result, "model": model.to(self.device).eval()}

    def teacher_result(self) -> dict:
        """The trained teacher: {"model", "history", "test_accuracy", "seconds", "device", "cached"}."""
        return self._train_dense("teacher", self._teacher_stage(), None)

    def teacher(self) -> nn.Module:
        return self.teacher_result()["model"]

    def teacher_snapshots(self) -> list[dict]:
        """The teacher at each epoch of `config.teacher_help.snapshot_epochs`, in epoch order: {"epoch", "model",
        "val_accuracy", "test_accuracy"}, states of the one teacher training (trained now unless cached)."""
        return [self._snapshot(epoch) for epoch in self._teacher_stage().config.snapshot_epochs or ()]

    def _snapshot(self, epoch: int) -> dict:
        stage = self._teacher_stage()
        if not stage.done:
            self.teacher_result()  # the teacher's training writes its snapshots
        model = self._build(self.config.teacher, self._init_seed(0))
        return snapshots.load(stage, epoch, model.to(self.device))

    def _teacher_at(self, epoch: int | None) -> nn.Module:
        """The trained teacher (None) or its snapshot at `epoch`."""
        return self.teacher() if epoch is None else self._snapshot(epoch)["model"]

    def student_result(self) -> dict:
        """The dense student, trained with KD from the teacher when `config.student_kd` is set."""
        teacher = self.teacher() if self.config.student_kd is not None else None
        return self._train_dense("student", self._student_stage(), teacher)

    def student(self) -> nn.Module:
        return self.student_result()["model"]

    # ---- stage 3 and 4: importance and masks -------------------------------------------------
    def scores_stage(
        self,
        criterion: str,
        *,
        scoring_temperature: float | None = None,
        seed: int | None = None,
        teacher_epoch: int | None = None,
    ) -> Stage:
        """The run-cache stage of `scores(criterion, ...)`, without computing anything."""
        seed = self._seed(seed)
        chosen = scorer.criterion(criterion)
        settings = self.config.scoring
        if scoring_temperature is not None:
            settings = replace(settings, kd=_with_temperature(settings.kd, scoring_temperature, "scoring_temperature"))
        teacher_epoch = snapshots.checked_epoch(self.config, teacher_epoch) if chosen.needs_teacher else None
        upstream = [self._student_stage().id] + ([self._teacher_stage().id] if chosen.needs_teacher else [])
        return self.cache.stage(
            f"scores-{criterion}",
            ScoringStage(
                criterion, settings if chosen.needs_data else None, seed if chosen.uses_seed else None, teacher_epoch
            ),
            upstream=upstream,
        )

    def scores(self, criterion: str = "teacher_guided", **options) -> dict[str, torch.Tensor]:
        """Importance of every prunable weight of the dense student by `criterion` (see `scorer.CRITERIA`).

        `options`, as `scores_stage` takes them: `scoring_temperature`, the temperature of the scoring loss (None:
        `config.scoring.kd`'s); `seed`, of the random criterion (None: `config.seed`); `teacher_epoch`, the
        teacher snapshot that scores (a criterion that needs the teacher; None: the trained teacher).
        """
        stage = self.scores_stage(criterion, **options)
        settings: ScoringStage = stage.config
        chosen = scorer.criterion(criterion)

        def compute(stage: Stage) -> dict:
            student = self.student()
            teacher = self._teacher_at(settings.teacher_epoch) if chosen.needs_teacher else None
            batches = (
                self.data.batches("train", settings.settings.batch_size, device=self.device, seed=self.config.seed)
                if chosen.needs_data
                else None
            )
            stage.save(
                scorer.score(
                    criterion,
                    student,
                    teacher=teacher,
                    batches=batches,
                    settings=settings.settings,
                    seed=self._seed(settings.seed),
                    progress=self.progress,
                ),
                "scores.pt",
            )
            return {}

        self._run(stage, compute)
        return stage.load("scores.pt")

    def masks(self, criterion: str, sparsity: float, *, over: str = "all", **options) -> dict[str, torch.Tensor]:
        """One-shot global masks at `sparsity`, measured `over` "all" weights (the paper's tables) or "prunable";
        made on the experiment's device, handed back on the CPU. `options`: as `scores` takes them."""
        ratio = masker.sparsity_for_target(self.architecture, sparsity, over=over)
        scores = self.scores(criterion, **options)
        masks = masker.global_masks(self._on_device(scores), ratio)
        return {name: keep.cpu() for name, keep in masks.items()}

    # ---- stage 5: retraining -------------------------------------------------------------------
    def pruned_result(
        self,
        criterion: str,
        sparsity: float,
        *,
        kd: bool = True,
        over: str = "all",
        retraining_temperature: float | None = None,
        seed: int | None = None,
        **retraining,
    ) -> dict:
        """Prune the dense student at `sparsity` by `criterion` and retrain it, with KD or without.

        `retraining_temperature`: the temperature of the KD retraining (None: `config.kd`'s); the scores
        keep the scoring temperature. `seed`: of the retraining's batches and of random scores (None:
        `config.seed`). `retraining`: what else `pruned_stage` takes: the teacher snapshot, the retraining's
        epochs, the whole KD loss. Returns {"model", "masks", "history", "test_accuracy", "sparsity_all",
        "sparsity_prunable", "pruning_seconds", "seconds" (pruning + retraining), "device", "cached"}.
        """
        seed = self._seed(seed)
        ratio = masker.sparsity_for_target(self.architecture, sparsity, over=over)
        stage = self.pruned_stage(
            criterion,
            sparsity,
            kd=kd,
            over=over,
            retraining_temperature=retraining_temperature,
            seed=seed,
            **retraining,
        )
        settings: PruningStage = stage.config
        teacher_epoch = retraining.get("teacher_epoch")
        # every stage before it is resolved (read back, when cached), so that the timings hold them all
        student, scores = self.student(), self.scores(criterion, seed=seed, teacher_epoch=teacher_epoch)
        teacher = self._teacher_at(settings.teacher_epoch) if kd else None

        def compute(stage: Stage) -> dict:
            with stopwatch(self.device) as pruning:
                # on the device the student retrains on (retrain takes masks on either); saved on the CPU
                masks = masker.global_masks(self._on_device(scores), ratio)
            model, history = retrain(
                student,
                masks,
                self.data,
                teacher=teacher,
                config=settings.retraining,
                kd=settings.kd,
                device=self.device,
                seed=seed,
                resume=stage.path("training.ckpt"),
                progress=self.progress,
                after_checkpoint=stage.checkpointed,
                checkpoint_every_s=self.checkpoint_every_s,
                desc=f"{criterion} {sparsity:.2%} {'KD' if kd else 'no KD'}",
            )
            masker.save_pruned(stage.path("model.pt"), model, masks)
            return {
                "history": history,
                "test_accuracy": evaluate(
                    model, self.data, "test", device=self.device, precision=self.config.retraining.precision
                ),
                "sparsity_all": masker.global_sparsity(model, masks, over="all"),
                "sparsity_prunable": masker.global_sparsity(model, masks, over="prunable"),
                "pruning_seconds": pruning.seconds,
            }

        result = self._run(stage, compute)
        try:
            model, masks, _ = masker.load_pruned(
                stage.path("model.pt"), self._build(self.config.student, self._init_seed(0))
            )
        except checkpoint.CheckpointError as error:
            raise stage.damaged(error) from error
        return {**result, "model": model.to(self.device).eval(), "masks": masks}

    def pruned_stage(
        self,
        criterion: str,
        sparsity: float,
        *,
        kd: bool = True,
        over: str = "all",
        retraining_temperature: float | None = None,
        seed: int | None = None,
        teacher_epoch: int | None = None,
        retraining_epochs: float | None = None,
        kd_settings: KDConfig | None = None,
    ) -> Stage:
        """The run-cache stage `pruned_result` computes, without computing anything (`.done` says whether
        it is there): what a sweep submitting jobs checks before submitting one.

        `teacher_epoch`: the teacher snapshot (`teacher_snapshots`) that scores (a criterion that needs the
        teacher) and that KD learns from; None: the trained teacher. `retraining_epochs`: the retraining's length,
        whole epochs or a fraction of one (None: `config.retraining`'s). `kd_settings`: the
        KD loss of the retraining (None: `config.kd`; a `retraining_temperature` applies to either).
        """
        seed = self._seed(seed)
        if (retraining_temperature is not None or kd_settings is not None) and not kd:
            raise InputError("retraining_temperature and kd_settings are KD retraining's: pass kd=True, or neither")
        kd_config = kd_settings or self.config.kd
        kd_config = _with_temperature(kd_config, retraining_temperature, "retraining_temperature") if kd else None
        epochs = self.config.retraining.epochs if retraining_epochs is None else retraining_epochs
        # a fraction of an epoch is one epoch drawing that share of the training split
        fraction = dict(epochs=1, epoch_fraction=epochs) if 0 < epochs < 1 else dict(epochs=epochs)
        retraining = replace(self.config.retraining, **fraction)
        scores_stage = self.scores_stage(criterion, seed=seed, teacher_epoch=teacher_epoch)
        teacher_epoch = snapshots.checked_epoch(self.config, teacher_epoch) if kd else None
        upstream = [self._student_stage().id, scores_stage.id] + ([self._teacher_stage().id] if kd else [])
        return self.cache.stage(
            "pruned", PruningStage(sparsity, over, retraining, kd_config, seed, teacher_epoch), upstream=upstream
        )

    def dense_stages(self) -> list[Stage]:
        """The stages of the dense networks the student's pruning builds on: the teacher and the student."""
        return [self._teacher_stage(), self._student_stage()]

    # ---- the iterative baseline ----------------------------------------------------------------
    def colt_result(self, settings: ColtConfig | None = None) -> dict:
        """COLT (or LTH) on this run's data, `config.colt` unless `settings` are given: the result of
        `colt.run_colt`, its rounds and ticket marked `cached` when read back from the run cache."""
        settings = self.config.colt if settings is None else settings
        masker.sparsity_for_target(self.architecture, settings.target_sparsity, over=settings.over)
        stage = self.cache.stage("lth" if settings.partitions == 1 else "colt", settings, upstream=[self.data_id])

        def compute(stage: Stage) -> dict:
            result = colt.run_colt(
                self.data,
                settings,
                folder=stage.folder,
                after_round=stage.checkpointed,
                device=self.device,
                progress=self.progress,
            )
            return {key: value for key, value in result.items() if key not in ("model", "mask", "folder")}

        result = self._run(stage, compute)
        if result["cached"]:
            result["rounds"] = [{**record, "cached": True} for record in result["rounds"]]
            result["ticket"] = {**result["ticket"], "cached": True}
        try:
            model, mask, _ = masker.load_pruned(stage.path(colt.TICKET), self._architecture(settings.model))
        except checkpoint.CheckpointError as error:
            raise stage.damaged(error) from error
        return {**result, "model": model.to(self.device).eval(), "mask": mask}

    # ---- the CLI's table ---------------------------------------------------------------------
    def summary_table(self, sparsities: tuple[float, ...] | None = None, *, over: str = "all") -> pd.DataFrame:
        """The command line's table of this run: `summary.summary_table`."""
        return summary.summary_table(self, sparsities, over=over)

    def check_requests(self, sparsities: tuple[float, ...], *, over: str = "all") -> None:
        """Refuse, before any stage runs, what would fail later: an unreachable sparsity, KD settings
        the loss rejects. (A run that failed only after its 90% retraining wasted that retraining.)"""
        for sparsity in sparsities:
            masker.sparsity_for_target(self.architecture, sparsity, over=over)
        c = self.config
        for name, kd in (("kd", c.kd), ("student_kd", c.student_kd), ("scoring.kd", c.scoring.kd)):
            if kd is None:
                continue
            beta = 0.5 if name == "scoring.kd" and kd.beta == "confidence" else kd.beta  # scoring may measure it
            try:
                losses.check_loss_settings(kd.alpha, kd.temperature, beta, kd.order)
            except ValueError as error:
                raise InputError(f"{name}: {error}") from None

    def _on_device(self, scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Scores (read back from the run cache onto the CPU) on the experiment's device, so that masks are made
        there: on a GPU run, `masker.global_masks`'s selection over millions of scores runs on the GPU."""
        return {name: score.to(self.device) for name, score in scores.items()}

    def _seed(self, seed: int | None) -> int:
        return self.config.seed if seed is None else seed


def _with_temperature(kd: KDConfig, temperature: float | None, name: str) -> KDConfig:
    """`kd` at `temperature` (None: its own), checked: 0, a negative or an infinite temperature is refused."""
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
            raise InputError(
                f"{name} must be a finite number > 0 (the paper uses 3 or 5), or None for the "
                f"profile's {kd.temperature:g}; got {temperature!r}"
            )
        kd = replace(kd, temperature=float(temperature))
    losses.check_loss_settings(kd.alpha, kd.temperature, kd.beta, kd.order)
    return kd
