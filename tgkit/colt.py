"""The iterative baselines: COLT (cyclic overlapping lottery tickets) and LTH, one round loop for both.

COLT (Hossain et al., IEEE Trans. AI 2025, arXiv 2212.12770; docs/method.md section 7) finds a sparse
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
(one network on the full data, a C-way head) and 20% per round: `hparams.lth_config`. The settings
(`hparams.ColtConfig`) of each profile are in `hparams`, beside the one-shot method's.

Landing on the target. The target is a number of pruned conv weights, `target_sparsity` counted over
all weights (conv + linear + BatchNorm gamma, as the paper's tables) or over the convs, converted by
`masker.sparsity_for_target`. A round whose merged mask would overshoot it removes exactly the
missing number of weights instead, so every run ends on the target to the weight. It takes them in
the order the merge would: a weight is as early as the network that ranks it lowest, so the AND of
the per-network masks at any rate is a prefix of that order, and the landing round removes a subset
of what the full round would have (`masker.removal_order`). Only that last round prunes less than 15%.

A run is checkpointed after every round (and the ticket once trained) in its own folder, which the
run cache names by the configuration and the data (`pipeline.Experiment.colt_result`): a run killed
half-way resumes from its last finished round. Timings are wall-clock seconds, GPU-synchronised,
measured in the process that ran the round; rounds read back from a checkpoint say `cached`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn

from tgkit import masker, models
from tgkit.data import ImageData
from tgkit.hparams import ColtConfig
from tgkit.retrainer import retrain
from tgkit.train import evaluate
from tgkit.util import checkpoint
from tgkit.util.device import default_device, device_name, stopwatch
from tgkit.util.errors import InputError
from tgkit.util.progress import progress_bar

Masks = dict[str, Tensor]
# the checkpoints of a run in its folder: theta0 and the heads, the state after the last round, the ticket
INITIAL, STATE, TICKET = "init.pt", "state.pt", "ticket.pt"


# --------------------------------------------------------------------------------------------------
# the class blocks


def class_blocks(num_classes: int, partitions: int) -> list[list[int]]:
    """`partitions` disjoint blocks of consecutive classes, as equal as possible (sizes differ by at
    most one, larger blocks first): 10 classes, 2 blocks -> [0..4], [5..9]."""
    if partitions < 1 or (partitions > 1 and num_classes // partitions < 2):
        raise InputError(
            f"{num_classes} classes make at most {num_classes // 2} blocks of two classes "
            f"(a network needs two classes to learn from), not {partitions}"
        )
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


def masked_magnitudes(model: nn.Module, mask: Masks) -> dict[str, Tensor]:
    """|W| of every prunable weight (float32), with -1 where the mask has already pruned it, on the device
    of the network's weights: the round's masks are then made there too (`masker.global_masks` on a GPU).

    A pruned weight is zero and would sort first anyway, but a surviving weight can be exactly zero
    too; -1 keeps the tie-break from trading a pruned weight for it.
    """
    weights = masker.prunable_parameters(model)
    if set(weights) != set(mask):
        raise InputError("the mask and the network's prunable tensors differ: was it built for another architecture?")
    # |W| where W lives (`scorer.magnitude_scores` hands its scores to the CPU); the shared mask comes from the CPU
    return {
        name: weight.detach().abs().float().masked_fill_(~mask[name].to(weight.device), -1.0)
        for name, weight in weights.items()
    }


def magnitude_mask(scores: dict[str, Tensor], rate: float) -> Masks:
    """One network's round: remove `rate` of its remaining weights (at least one, never the last one)
    by one global threshold over `masked_magnitudes`; the weights pruned before stay pruned."""
    total = sum(score.numel() for score in scores.values())
    pruned = sum(int((score < 0).sum()) for score in scores.values())
    remaining = total - pruned
    removed = min(max(1, round(rate * remaining)), remaining - 1)
    return masker.global_masks(scores, (pruned + removed) / total)


def rewind(network: nn.Module, initial_state: dict[str, Tensor], mask: Masks) -> nn.Module:
    """Every weight, buffer and the head back to `initial_state`, then the pruned weights to zero."""
    network.load_state_dict(initial_state)
    return masker.apply_masks(network, mask)


# --------------------------------------------------------------------------------------------------
# the search: networks, shared mask and rounds, round by round


def _head_name(model: nn.Module) -> str:
    """The classifier: the last Linear module (the only part the block networks do not share)."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear)][-1]


def _cpu_state(model: nn.Module) -> dict[str, Tensor]:
    return {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}


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
        self.target_pruned = round(ratio * masker.count_weights(self.mask))
        self.rounds: list[dict] = []

    def _build(self, num_classes: int, seed_offset: int) -> nn.Module:
        spec = self.config.model
        torch.manual_seed(self.config.seed * 1000 + seed_offset)
        return models.build_model(spec.arch, num_classes, in_channels=self.data.image_shape[0], width=spec.width)

    @property
    def pruned(self) -> int:
        return masker.count_pruned(self.mask)

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
            _, history = retrain(
                network,
                self.mask,
                block,
                config=self.config.round_training,
                device=self.device,
                seed=self.config.seed * 1000 + index,
                progress=self.progress,
                desc=f"round {round_index}: block {index + 1}/{len(self.blocks)}",
            )
            accuracies.append(max(epoch["val_accuracy"] for epoch in history))
        return accuracies

    def next_round(self) -> dict:
        """Round 0 trains the networks; each later round prunes, merges, rewinds and (unless the target
        is reached) retrains. Returns the round's record, also appended to `rounds`."""
        round_index = len(self.rounds)
        remaining_before = masker.count_weights(self.mask) - self.pruned
        pruning_seconds = merge_seconds = 0.0
        trimmed = False
        if round_index > 0:
            with stopwatch(self.device) as pruning:
                scores, own_masks = self._prune()
            with stopwatch(self.device) as merge:
                self.mask, trimmed = self._merge_and_rewind(scores, own_masks)
            pruning_seconds, merge_seconds = pruning.seconds, merge.seconds
        accuracies, training_seconds = [], 0.0
        if not self.done:
            with stopwatch(self.device) as training:
                accuracies = self.train_blocks(round_index)
            training_seconds = training.seconds
        remaining = masker.count_weights(self.mask) - self.pruned
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
        merged = masker.intersect_masks(own_masks)
        trimmed = masker.count_pruned(merged) > self.target_pruned
        if trimmed:
            merged = masker.masks_removing_first(scores, self.target_pruned)
        # made on the networks' device; the shared mask lives on the CPU, as checkpoints store it and run_colt returns it
        merged = {name: keep.cpu() for name, keep in merged.items()}
        for network, state in zip(self.networks, self.initial_states):
            rewind(network, state, merged)
        return merged, trimmed

    def train_ticket(self) -> tuple[nn.Module, dict]:
        """(mask, theta0) with the template's fresh C-way head, trained on the full data under the mask
        and tested; the timing includes the test evaluation, as the one-shot stages' do."""
        with stopwatch(self.device) as elapsed:
            ticket = self._build(self.data.num_classes, 0)
            ticket.load_state_dict(self.template.state_dict())
            ticket, history = retrain(
                ticket,
                self.mask,
                self.data,
                config=self.config.final_training,
                device=self.device,
                seed=self.config.seed,
                progress=self.progress,
                desc=f"{self.config.method} ticket",
            )
            accuracy = evaluate(
                ticket, self.data, "test", device=self.device, precision=self.config.final_training.precision
            )
        return ticket, {
            "test_accuracy": accuracy,
            "history": history,
            "seconds": elapsed.seconds,
            "sparsity_all": masker.global_sparsity(ticket, self.mask, over="all"),
            "sparsity_prunable": masker.global_sparsity(ticket, self.mask, over="prunable"),
            "device": device_name(self.device),
        }

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


def run_colt(
    data: ImageData,
    config: ColtConfig,
    *,
    folder: str | Path | None = None,
    after_round: Callable[[], None] | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> dict:
    """Run COLT (or LTH: `hparams.lth_config`) on `data` to `config.target_sparsity` and train its ticket.

    folder: this run's own folder, checkpointed after every round (the run cache gives each configuration
        and dataset one: `pipeline.Experiment.colt_result`); a run killed half-way resumes from its last
        finished round, one that finished returns at once. None: no checkpoints.
    after_round: called once each round is checkpointed.
    Returns {"method", "config", "rounds" (one dict per round, see `report.latency.rounds_table`), "mask",
    "ticket" ({"test_accuracy", "history", "seconds", "sparsity_all", "sparsity_prunable", "device",
    "cached"}), "model" (the trained ticket), "seconds" (all rounds and the ticket)}.
    """
    device = torch.device(device) if device else default_device()
    search = ColtSearch(data, config, device, progress)
    home = Path(folder) if folder is not None else None
    if home is not None:
        _restore(search, home)
    finished_before = len(search.rounds)

    bar = progress_bar(
        total=_most_rounds(search), initial=finished_before, desc=config.method, unit="round", disable=not progress
    )
    while not search.done:
        record = search.next_round()
        if home is not None:
            checkpoint.save_atomic(search.state_dict(), home / STATE)
            if after_round is not None:
                after_round()
        bar.update()
        bar.set_postfix(sparsity=f"{record['sparsity_all']:.2%}")
    bar.total = bar.n  # the bound assumed the slowest pruning; the bar ends full
    bar.close()

    ticket, ticket_result = _ticket(search, home)
    rounds = [{**record, "cached": index < finished_before} for index, record in enumerate(search.rounds)]
    return {
        "method": config.method,
        "config": asdict(config),
        "rounds": rounds,
        "mask": search.mask,
        "ticket": ticket_result,
        "model": ticket,
        "seconds": sum(record["seconds"] for record in rounds) + ticket_result["seconds"],
    }


def _most_rounds(search: ColtSearch) -> int:
    """Rounds needed if every round removed only `prune_rate`: the progress bar's total."""
    if search.target_pruned == 0:
        return 0
    remaining_fraction = 1 - search.target_pruned / masker.count_weights(search.mask)
    return 1 + math.ceil(math.log(remaining_fraction) / math.log(1 - search.config.prune_rate))


def _restore(search: ColtSearch, home: Path) -> None:
    """Resume from `home` if an earlier run of this configuration left checkpoints there, else start it."""
    initial_file, state_file = home / INITIAL, home / STATE
    config = asdict(search.config)
    if not initial_file.exists():
        checkpoint.save_atomic({"config": config, **search.initial_state_dict()}, initial_file)
        return
    initial = checkpoint.load_checkpoint(initial_file)
    if initial.get("config") != config:
        raise checkpoint.CheckpointError(
            f"{home} holds a run of another configuration; delete the folder to start over, or pass another `folder`."
        )
    state = checkpoint.load_checkpoint(state_file) if state_file.exists() else None
    search.load(initial, state)


def _ticket(search: ColtSearch, home: Path | None) -> tuple[nn.Module, dict]:
    ticket_file = home / TICKET if home is not None else None
    if ticket_file is not None and ticket_file.exists():
        model = search._build(search.data.num_classes, 0)
        model, _, result = masker.load_pruned(ticket_file, model)
        return model.to(search.device).eval(), {**result, "cached": True}
    model, result = search.train_ticket()
    if ticket_file is not None:
        masker.save_pruned(ticket_file, model, search.mask, **result)
    return model.eval(), {**result, "cached": False}
