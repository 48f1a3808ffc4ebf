"""The iterative baselines: COLT (cyclic overlapping lottery tickets) and LTH, one round loop for both.

COLT (Hossain et al., IEEE Trans. AI 2025, arXiv 2212.12770; method.md section 7) finds a sparse
ticket by pruning several networks, each trained on its own block of the classes, and keeping only
the weights that all of them keep:

    split the C classes into P disjoint blocks (CIFAR-10, P = 2: classes 0-4 and 5-9), labels re-indexed
    theta0: one random initialisation of the body (everything but the classifier), shared by all;
            each block's network has its own C/P-way head
    round 0: train network i on block i from (theta0, head_i)
    round r = 1, 2, ... until the target sparsity:
        prune   in each network, the 15% lowest-magnitude of its remaining conv weights (one global
                threshold over all its convs)
        merge   AND the P masks: a weight survives only if every network kept it; then rewind every
                network to (theta0, head_i) under the shared mask
        train   network i on block i under the shared mask, skipped in the round that reaches the
                target: the trained block networks only ever serve the next round's pruning
    ticket: (shared mask, theta0) with a fresh C-way head, trained on the full data under the mask

A weight removed by any network is gone, so a round removes between 15% (all networks agree) and
1 - 0.85^P of the remaining weights (27.75% for P = 2: they disagree completely). Each round records
this effective prune rate.

LTH, iterative magnitude pruning with rewinding (Frankle & Carbin 2019), is the same loop with P = 1
(one network on the full data, a C-way head) and 20% per round: `lth_config`.

Landing on the target. The target is a number of pruned conv weights, `target_sparsity` counted over
all weights (conv + linear + BatchNorm gamma, as the paper's tables) or over the convs, converted by
`masker.sparsity_for_target`. A round whose merged mask would overshoot it removes exactly the
missing number of weights instead, so every run ends on the target to the weight. It takes them in
the order the merge would: a weight is as early as the network that ranks it lowest, so the AND of
the per-network masks at any rate is a prefix of that order, and the landing round removes a subset
of what the full round would have (`removal_order`). Only that last round prunes less than 15%.

Runs are checkpointed after every round (and the ticket once trained) under `folder`, in a
sub-folder named by a hash of the configuration and of the data: a run killed half-way resumes from
its last finished round, a changed configuration starts afresh. Timings are wall-clock seconds,
GPU-synchronised, measured in the process that ran the round; rounds read back from a checkpoint say
`cached`.
"""
from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import torch
from torch import Tensor, nn

from tgkit import checkpoint, masker, models, profiles, scorer
from tgkit.data import ImageData
from tgkit.frontend import progress_bar
from tgkit.pipeline import config_key, device_name
from tgkit.profiles import ModelSpec
from tgkit.retrainer import retrain
from tgkit.train import TrainConfig, default_device, evaluate, synchronize

T = TypeVar("T")
Masks = dict[str, Tensor]

# The paper's round training (COLT, section on experiments): 50 epochs of SGD, lr 0.1, momentum 0.9
# (plain, not Nesterov), weight decay 5e-4, batch 256, one warm-up epoch then step decay. The kit's
# one-cycle schedule (linear warm-up over one epoch, then cosine decay) stands in for warm-up + step
# decay: the same shape, without step milestones to tune.
PAPER_ROUND_TRAINING = TrainConfig(epochs=50, batch_size=256, lr=0.1, momentum=0.9, nesterov=False,
                                   weight_decay=5e-4, schedule="onecycle", warmup_epochs=1.0)


@dataclass
class ColtConfig:
    """Settings of a COLT run (an LTH run with partitions=1 and prune_rate=0.2; see `lth_config`).

    model: the network to prune; the one-shot student's spec compares like with like.
    partitions: P, the number of disjoint class blocks, one network each (paper: 2).
    prune_rate: fraction of each network's remaining conv weights it removes per round (paper: 0.15).
    round_training: how each block network is trained in round 0 and after every merge
        (default: the paper's, see `PAPER_ROUND_TRAINING`).
    final_training: how the ticket (mask, theta0, fresh C-way head) is trained on the full data.
    target_sparsity: where to stop, counted `over` "all" weights (the paper's tables) or "prunable".
    seed: theta0, every head, and the batch order.
    """

    model: ModelSpec = field(default_factory=lambda: ModelSpec("resnet18", 64))
    partitions: int = 2
    prune_rate: float = 0.15
    round_training: TrainConfig = field(default_factory=lambda: replace(PAPER_ROUND_TRAINING))
    final_training: TrainConfig = field(default_factory=lambda: replace(PAPER_ROUND_TRAINING))
    target_sparsity: float = 0.977
    over: str = "all"
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.partitions, int) or self.partitions < 1:
            raise ValueError(f"partitions must be a whole number >= 1, got {self.partitions!r}")
        if not 0 < self.prune_rate < 1:
            raise ValueError(f"prune_rate must be in (0, 1), got {self.prune_rate!r}")
        if not 0 <= self.target_sparsity < 1:
            raise ValueError(f"target_sparsity must be in [0, 1), got {self.target_sparsity!r}")
        if self.over not in masker.OVER:
            raise ValueError(f"over must be one of {masker.OVER}, got {self.over!r}")

    @property
    def method(self) -> str:
        """"LTH" for one partition, else "COLT (P=...)": the name tables and plots show."""
        return "LTH" if self.partitions == 1 else f"COLT (P={self.partitions})"


# Per profile the network is that profile's student (like against like). The ticket starts from
# theta0, so in smoke and quick its final training is as long as the student's dense training.
#   smoke  digits, ResNet-10 width 8, to 90%: 3 epochs a round, ~10 rounds
#   quick  CIFAR-10 subset, ResNet-10 width 16, to 90%: 2 epochs a round (a block has 1/P of the images)
#   full   ResNet-18 to 97.7%, the sparsity of the paper's latency comparison: the paper's recipe,
#          50 epochs a round and for the ticket; ~15 rounds, i.e. some 800 epochs of full-data work
_COLT_PROFILES: dict[str, Callable[[], dict[str, Any]]] = {
    "smoke": lambda: dict(round_training=TrainConfig(epochs=3, batch_size=64, lr=0.05),
                          final_training=TrainConfig(epochs=12, batch_size=64, lr=0.05), target_sparsity=0.90),
    "quick": lambda: dict(round_training=TrainConfig(epochs=2, batch_size=128, lr=0.1),
                          final_training=TrainConfig(epochs=6, batch_size=128, lr=0.1), target_sparsity=0.90),
    "fast": lambda: dict(round_training=TrainConfig(epochs=1, batch_size=512, lr=0.4),
                         final_training=TrainConfig(epochs=15, batch_size=512, lr=0.4), target_sparsity=0.977),
    "full": lambda: dict(round_training=replace(PAPER_ROUND_TRAINING),
                         final_training=replace(PAPER_ROUND_TRAINING), target_sparsity=0.977),
}


def colt_config(profile_name: str, **overrides) -> ColtConfig:
    """COLT's settings for a profile of `tgkit.profiles` (smoke, quick, full), with field overrides,
    e.g. `colt_config("quick", target_sparsity=0.977)`."""
    if profile_name not in _COLT_PROFILES:
        raise ValueError(f"unknown profile {profile_name!r}; choose one of {', '.join(_COLT_PROFILES)}")
    settings = {"model": profiles.profile(profile_name).student, **_COLT_PROFILES[profile_name]()}
    return ColtConfig(**(settings | overrides))


def lth_config(profile_name: str, **overrides) -> ColtConfig:
    """LTH with rewinding is COLT with one partition (the full data, a C-way head) and 20% per round."""
    return colt_config(profile_name, **({"partitions": 1, "prune_rate": 0.2} | overrides))


# --------------------------------------------------------------------------------------------------
# the class blocks


def class_blocks(num_classes: int, partitions: int) -> list[list[int]]:
    """`partitions` disjoint blocks of consecutive classes, as equal as possible (sizes differ by at
    most one, larger blocks first): 10 classes, 2 blocks -> [0..4], [5..9]."""
    if partitions < 1 or (partitions > 1 and num_classes // partitions < 2):
        raise ValueError(f"{num_classes} classes make at most {num_classes // 2} blocks of two classes "
                         f"(a network needs two classes to learn from), not {partitions}")
    size, extra = divmod(num_classes, partitions)
    bounds = [0]
    for block in range(partitions):
        bounds.append(bounds[-1] + size + (block < extra))
    return [list(range(start, stop)) for start, stop in zip(bounds, bounds[1:])]


def block_datasets(data: ImageData, partitions: int) -> list[ImageData]:
    """The data of each class block, every split, labels re-indexed 0..block size - 1."""
    return [data.subset_classes(block) for block in class_blocks(data.num_classes, partitions)]


# --------------------------------------------------------------------------------------------------
# one round: prune, merge, rewind


def count_pruned(mask: Masks) -> int:
    return sum(int((~keep).sum()) for keep in mask.values())


def count_weights(mask: Masks) -> int:
    return sum(keep.numel() for keep in mask.values())


def masked_magnitudes(model: nn.Module, mask: Masks) -> dict[str, Tensor]:
    """|W| of every prunable weight, with -1 where the mask has already pruned it.

    A pruned weight is zero and would sort first anyway, but a surviving weight can be exactly zero
    too; -1 keeps the tie-break from trading a pruned weight for it.
    """
    scores = scorer.magnitude_scores(model)
    if set(scores) != set(mask):
        raise ValueError("the mask and the network's prunable tensors differ: was it built for another architecture?")
    return {name: score.masked_fill(~mask[name], -1.0) for name, score in scores.items()}


def magnitude_mask(scores: dict[str, Tensor], rate: float) -> Masks:
    """One network's round: remove `rate` of its remaining weights (at least one, never the last one)
    by one global threshold over `masked_magnitudes`; the weights pruned before stay pruned."""
    total = sum(score.numel() for score in scores.values())
    pruned = sum(int((score < 0).sum()) for score in scores.values())
    remaining = total - pruned
    removed = min(max(1, round(rate * remaining)), remaining - 1)
    return masker.global_masks(scores, (pruned + removed) / total)


def merge_masks(masks: list[Masks]) -> Masks:
    """AND: a weight survives only where every network kept it."""
    return {name: torch.stack([mask[name] for mask in masks]).all(0) for name in masks[0]}


def removal_order(scores: list[dict[str, Tensor]]) -> Tensor:
    """Flat indices of all prunable weights in the order the merge removes them.

    Per network, the rank of each weight in its lowest-first order (stable, as `masker.global_masks`
    breaks ties); a weight comes as early as its lowest rank over the networks (ties by index). The
    AND of the per-network masks that each prune their n lowest is exactly the weights some network
    ranks below n, so it is always a prefix of this order; already pruned weights (-1) come first.
    """
    ranks = []
    for network_scores in scores:
        flat = torch.cat([score.reshape(-1) for score in network_scores.values()])
        rank = torch.empty_like(flat, dtype=torch.int64)
        rank[torch.argsort(flat, stable=True)] = torch.arange(flat.numel())
        ranks.append(rank)
    return torch.argsort(torch.stack(ranks).amin(0), stable=True)


def mask_removing_first(scores: list[dict[str, Tensor]], count: int) -> Masks:
    """The mask that removes the first `count` weights of `removal_order`."""
    keep = torch.ones(sum(score.numel() for score in scores[0].values()), dtype=torch.bool)
    keep[removal_order(scores)[:count]] = False
    pieces = keep.split([score.numel() for score in scores[0].values()])
    return {name: piece.reshape(score.shape) for (name, score), piece in zip(scores[0].items(), pieces)}


def rewind(network: nn.Module, initial_state: dict[str, Tensor], mask: Masks) -> nn.Module:
    """Every weight, buffer and the head back to `initial_state`, then the pruned weights to zero."""
    network.load_state_dict(initial_state)
    return masker.apply_masks(network, mask)


# --------------------------------------------------------------------------------------------------
# the search: networks, shared mask and rounds, round by round


def _timed(device: torch.device, work: Callable[[], T]) -> tuple[T, float]:
    synchronize(device)
    started = time.perf_counter()
    result = work()
    synchronize(device)
    return result, time.perf_counter() - started


def _head_name(model: nn.Module) -> str:
    """The classifier: the last Linear module (the only part the block networks do not share)."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear)][-1]


def _cpu_state(model: nn.Module) -> dict[str, Tensor]:
    return {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}


def data_fingerprint(data: ImageData) -> dict:
    """What identifies the data for the run cache: name, sizes, and a hash of every label and of a
    sample of the pixels (a different subset, split or seed changes it; hashing every pixel would not
    be worth its seconds)."""
    digest = hashlib.sha256()
    for split in ("train", "val", "test"):
        images, labels = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
        digest.update(labels.cpu().numpy().tobytes())
        digest.update(images.reshape(-1)[::997].cpu().numpy().tobytes())
    return {"name": data.name, "classes": data.num_classes, "image_shape": list(data.image_shape),
            "sizes": [len(data.train_y), len(data.val_y), len(data.test_y)], "hash": digest.hexdigest()[:16]}


class ColtSearch:
    """The state of a COLT (or LTH) run between rounds: block data and networks, theta0, the shared mask,
    and one record per finished round. `next_round` advances it; `done` says when the target is reached.

    `template` is the C-way network at theta0 (its head is the ticket's fresh head). Network i is
    built with seed `seed * 1000 + i` and then given theta0's body: with one partition, network 0 is
    the template itself, so LTH rewinds to exactly the initialisation its ticket is trained from.
    """

    def __init__(self, data: ImageData, config: ColtConfig, device: torch.device, progress: bool = True):
        self.config, self.device, self.progress = config, device, progress
        self.data = data.to(device)  # once, here: moving data is not part of any timed stage
        self.blocks = [block.to(device) for block in block_datasets(data, config.partitions)]
        self.template = self._build(data.num_classes, 0)
        head = _head_name(self.template) + "."
        theta0_body = {name: tensor for name, tensor in self.template.state_dict().items() if not name.startswith(head)}
        self.networks, self.initial_states = [], []
        for index, block in enumerate(self.blocks):
            network = self._build(block.num_classes, index)
            network.load_state_dict(network.state_dict() | theta0_body)
            self.initial_states.append(_cpu_state(network))
            self.networks.append(network.to(device))
        prunable = masker.prunable_parameters(self.template)
        self.mask: Masks = {name: torch.ones_like(param, dtype=torch.bool) for name, param in prunable.items()}
        ratio = masker.sparsity_for_target(self.template, config.target_sparsity, over=config.over)
        self.target_pruned = round(ratio * count_weights(self.mask))
        self.rounds: list[dict] = []

    def _build(self, num_classes: int, seed_offset: int) -> nn.Module:
        spec = self.config.model
        torch.manual_seed(self.config.seed * 1000 + seed_offset)
        return models.build_model(spec.arch, num_classes, in_channels=self.data.image_shape[0], width=spec.width)

    @property
    def pruned(self) -> int:
        return count_pruned(self.mask)

    @property
    def done(self) -> bool:
        return self.pruned >= self.target_pruned

    def sparsity(self, over: str) -> float:
        """Counted from the mask (`masker.global_sparsity`): theta0's zero-initialised BatchNorm gammas
        are weights at zero, not pruned weights."""
        return masker.global_sparsity(self.template, self.mask, over=over)

    def train_blocks(self, round_index: int) -> list[float]:
        """Train every network on its block under the shared mask; their best validation accuracies."""
        accuracies = []
        for index, (network, block) in enumerate(zip(self.networks, self.blocks)):
            # the same batch order in every round, as in LTH experiments: rounds differ only by the mask
            _, history = retrain(network, self.mask, block, config=self.config.round_training, device=self.device,
                                 seed=self.config.seed * 1000 + index, progress=self.progress,
                                 desc=f"round {round_index}: block {index + 1}/{len(self.blocks)}")
            accuracies.append(max(epoch["val_accuracy"] for epoch in history))
        return accuracies

    def next_round(self) -> dict:
        """Round 0 trains the networks; each later round prunes, merges, rewinds and (unless the target
        is reached) retrains. Returns the round's record, also appended to `rounds`."""
        round_index = len(self.rounds)
        remaining_before = count_weights(self.mask) - self.pruned
        pruning_seconds = merge_seconds = 0.0
        trimmed = False
        if round_index > 0:
            (scores, own_masks), pruning_seconds = _timed(self.device, self._prune)
            (self.mask, trimmed), merge_seconds = _timed(self.device, lambda: self._merge_and_rewind(scores, own_masks))
        accuracies, training_seconds = ([], 0.0) if self.done else _timed(
            self.device, lambda: self.train_blocks(round_index))
        remaining = count_weights(self.mask) - self.pruned
        record = {
            "round": round_index,
            "sparsity_all": self.sparsity("all"),
            "sparsity_prunable": self.sparsity("prunable"),
            "remaining_weights": remaining,
            "effective_prune_rate": 1 - remaining / remaining_before if round_index > 0 else None,
            "trimmed": trimmed,
            "block_val_accuracy": accuracies,
            "training_seconds": training_seconds,
            "pruning_seconds": pruning_seconds,
            "merge_seconds": merge_seconds,
            "seconds": training_seconds + pruning_seconds + merge_seconds,
            "device": device_name(self.device),
        }
        self.rounds.append(record)
        return record

    def _prune(self) -> tuple[list[dict[str, Tensor]], list[Masks]]:
        """Every network's scores and its own magnitude mask at `prune_rate`."""
        scores = [masked_magnitudes(network, self.mask) for network in self.networks]
        return scores, [magnitude_mask(network_scores, self.config.prune_rate) for network_scores in scores]

    def _merge_and_rewind(self, scores: list[dict[str, Tensor]], own_masks: list[Masks]) -> tuple[Masks, bool]:
        """The AND of the networks' masks, trimmed to land on the target if it overshoots (then True);
        every network rewound under it."""
        merged = merge_masks(own_masks)
        trimmed = count_pruned(merged) > self.target_pruned
        if trimmed:
            merged = mask_removing_first(scores, self.target_pruned)
        for network, state in zip(self.networks, self.initial_states):
            rewind(network, state, merged)
        return merged, trimmed

    def train_ticket(self) -> tuple[nn.Module, dict]:
        """(mask, theta0) with the template's fresh C-way head, trained on the full data under the mask
        and tested; the timing includes the test evaluation, as the one-shot stages' do."""
        def work() -> tuple[nn.Module, list[dict], float]:
            ticket = self._build(self.data.num_classes, 0)
            ticket.load_state_dict(self.template.state_dict())
            ticket, history = retrain(ticket, self.mask, self.data, config=self.config.final_training,
                                      device=self.device, seed=self.config.seed, progress=self.progress,
                                      desc=f"{self.config.method} ticket")
            return ticket, history, evaluate(ticket, self.data, "test", device=self.device)

        (ticket, history, accuracy), seconds = _timed(self.device, work)
        return ticket, {"test_accuracy": accuracy, "history": history, "seconds": seconds,
                        "sparsity_all": masker.global_sparsity(ticket, self.mask, over="all"),
                        "sparsity_prunable": masker.global_sparsity(ticket, self.mask, over="prunable"),
                        "device": device_name(self.device)}

    # ---- checkpoints -------------------------------------------------------------------------
    def initial_state_dict(self) -> dict:
        return {"theta0": _cpu_state(self.template), "initial_states": self.initial_states}

    def state_dict(self) -> dict:
        return {"rounds": self.rounds, "mask": self.mask, "networks": [_cpu_state(n) for n in self.networks]}

    def load(self, initial: dict, state: dict | None) -> None:
        """Restore theta0 and the heads saved at the start (not rebuilt: another torch version could draw
        other random numbers), and, if given, the rounds so far."""
        self.template.load_state_dict(initial["theta0"])
        self.initial_states = initial["initial_states"]
        for network, own in zip(self.networks, state["networks"] if state else self.initial_states):
            network.load_state_dict(own)
        if state:
            self.mask, self.rounds = state["mask"], state["rounds"]


# --------------------------------------------------------------------------------------------------
# the run


def run_settings(data: ImageData, config: ColtConfig) -> dict:
    """Everything a run's result depends on: its cache key."""
    return {"method": config.method, "config": asdict(config), "data": data_fingerprint(data)}


def run_folder(folder: str | Path, data: ImageData, config: ColtConfig) -> Path:
    """Where `run_colt` keeps this configuration's checkpoints: `folder/<colt|lth>-<hash>`."""
    prefix = "lth" if config.partitions == 1 else "colt"
    return Path(folder) / f"{prefix}-{config_key(run_settings(data, config))}"


def run_colt(data: ImageData, config: ColtConfig, *, folder: str | Path | None = None,
             device: str | torch.device | None = None, progress: bool = True) -> dict:
    """Run COLT (or LTH: `lth_config`) on `data` to `config.target_sparsity` and train its ticket.

    folder: where to checkpoint after every round (`run_folder`); a run killed half-way resumes from
        its last finished round, one that finished returns at once. None: no checkpoints.
    Returns {"method", "config", "rounds" (one dict per round, see `rounds_table`), "mask",
    "ticket" ({"test_accuracy", "history", "seconds", "sparsity_all", "sparsity_prunable", "device",
    "cached"}), "model" (the trained ticket), "seconds" (all rounds and the ticket), "folder"}.
    """
    device = torch.device(device) if device else default_device()
    search = ColtSearch(data, config, device, progress)
    home = run_folder(folder, data, config) if folder is not None else None
    if home is not None:
        _restore(search, home, run_settings(data, config))
    finished_before = len(search.rounds)

    bar = progress_bar(total=_most_rounds(search), initial=finished_before, desc=config.method, unit="round",
                       disable=not progress)
    while not search.done:
        record = search.next_round()
        if home is not None:
            checkpoint.save_atomic(search.state_dict(), home / "state.pt")
        bar.update()
        bar.set_postfix(sparsity=f"{record['sparsity_all']:.2%}")
    bar.total = bar.n  # the bound assumed the slowest pruning; the bar ends full
    bar.close()

    ticket, ticket_result = _ticket(search, home)
    rounds = [{**record, "cached": index < finished_before} for index, record in enumerate(search.rounds)]
    return {"method": config.method, "config": asdict(config), "rounds": rounds, "mask": search.mask,
            "ticket": ticket_result, "model": ticket,
            "seconds": sum(record["seconds"] for record in rounds) + ticket_result["seconds"],
            "folder": home}


def _most_rounds(search: ColtSearch) -> int:
    """Rounds needed if every round removed only `prune_rate`: the progress bar's total."""
    if search.target_pruned == 0:
        return 0
    remaining_fraction = 1 - search.target_pruned / count_weights(search.mask)
    return 1 + math.ceil(math.log(remaining_fraction) / math.log(1 - search.config.prune_rate))


def _restore(search: ColtSearch, home: Path, settings: dict) -> None:
    """Resume from `home` if an earlier run left checkpoints there, else start it."""
    initial_file, state_file = home / "init.pt", home / "state.pt"
    if not initial_file.exists():
        checkpoint.write_json_atomic(settings, home / "settings.json")
        checkpoint.save_atomic({"settings": settings, **search.initial_state_dict()}, initial_file)
        return
    initial = checkpoint.load_checkpoint(initial_file)
    if initial["settings"] != settings:
        raise checkpoint.CheckpointError(
            f"{home} holds a run of another configuration or other data; delete the folder to start over, "
            f"or pass another `folder`.")
    state = checkpoint.load_checkpoint(state_file) if state_file.exists() else None
    search.load(initial, state)


def _ticket(search: ColtSearch, home: Path | None) -> tuple[nn.Module, dict]:
    ticket_file = home / "ticket.pt" if home is not None else None
    if ticket_file is not None and ticket_file.exists():
        model = search._build(search.data.num_classes, 0)
        model, _, result = masker.load_pruned(ticket_file, model)
        return model.to(search.device).eval(), {**result, "cached": True}
    model, result = search.train_ticket()
    if ticket_file is not None:
        masker.save_pruned(ticket_file, model, search.mask, **result)
    return model.eval(), {**result, "cached": False}


# What `rounds_table` shows, in order; `run_colt`'s round records hold the same keys.
ROUND_COLUMNS = ("round", "method", "sparsity_all", "sparsity_prunable", "remaining_weights", "effective_prune_rate",
                 "trimmed", "block_val_accuracy", "mean_block_val_accuracy", "training_seconds", "pruning_seconds",
                 "merge_seconds", "seconds", "cumulative_seconds", "device", "cached")


def rounds_table(result: dict) -> pd.DataFrame:
    """One row per round of a `run_colt` result (see `ROUND_COLUMNS`), with the cumulative seconds at
    the end of each round (for sparsity against time) and the mean best validation accuracy of the
    block networks (NaN where a round trained none: the last one)."""
    table = pd.DataFrame(result["rounds"], columns=[c for c in ROUND_COLUMNS if c not in
                                                    ("method", "mean_block_val_accuracy", "cumulative_seconds")])
    table["method"] = result["method"]
    table["mean_block_val_accuracy"] = [sum(a) / len(a) if a else float("nan") for a in table["block_val_accuracy"]]
    table["cumulative_seconds"] = table["seconds"].cumsum()
    table["effective_prune_rate"] = table["effective_prune_rate"].astype(float)
    return table[list(ROUND_COLUMNS)]
