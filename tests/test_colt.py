"""`tgkit.colt`: COLT and LTH on digits with tiny CNNs: partitions, merged masks, rewinding, landing
exactly on the target, resuming from the last finished round, checkpoints bound to their configuration.
(The mask algebra they build on is in test_masker.py, their settings' defaults in test_hparams.py.)"""

from dataclasses import replace

import pytest
import torch

from tgkit import colt, hparams, masker
from tgkit.colt import ColtSearch
from tgkit.hparams import ColtConfig, ModelSpec, TrainConfig
from tgkit.report import latency
from tgkit.study import runcache
from tgkit.util import checkpoint

FAST = TrainConfig(epochs=1, batch_size=64, lr=0.05)
TINY = ColtConfig(
    model=ModelSpec("smallcnn", 8),
    round_training=FAST,
    final_training=TrainConfig(epochs=6, batch_size=64, lr=0.05),
    target_sparsity=0.5,
)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def finished_run(digits, tmp_path_factory):
    """A whole uninterrupted run to 50% of all weights, checkpointed."""
    folder = tmp_path_factory.mktemp("colt")
    return folder, colt.run_colt(digits, TINY, folder=folder, device="cpu", progress=False)


def search(digits, **overrides) -> ColtSearch:
    return ColtSearch(digits, replace(TINY, **overrides), torch.device("cpu"), progress=False)


def prunable_weights(network) -> dict[str, torch.Tensor]:
    return {name: param.detach() for name, param in masker.prunable_parameters(network).items()}


# ---- partitions --------------------------------------------------------------------------------


def test_classes_split_into_consecutive_blocks():
    assert colt.class_blocks(10, 2) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert colt.class_blocks(10, 1) == [list(range(10))]
    assert colt.class_blocks(10, 3) == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    for impossible in (0, 6):
        with pytest.raises(ValueError, match="blocks"):
            colt.class_blocks(10, impossible)


def test_block_data_holds_its_classes_relabelled(digits):
    low, high = colt.block_datasets(digits, 2)
    assert (low.classes, high.classes) == (digits.classes[:5], digits.classes[5:])
    for split in ("train", "val", "test"):
        images, labels = getattr(digits, f"{split}_x"), getattr(digits, f"{split}_y")
        for block, first_class in ((low, 0), (high, 5)):
            in_block = (labels >= first_class) & (labels < first_class + 5)
            assert torch.equal(getattr(block, f"{split}_y"), labels[in_block] - first_class)
            assert torch.equal(getattr(block, f"{split}_x"), images[in_block])


def test_networks_share_theta0_and_own_their_heads(digits):
    run = search(digits)
    head = "12."  # SmallCNN's classifier
    theta0 = run.template.state_dict()
    for network, initial in zip(run.networks, run.initial_states):
        assert network[-1].out_features == 5
        assert all(torch.equal(initial[name], theta0[name]) for name in theta0 if not name.startswith(head))
        assert all(torch.equal(tensor, initial[name]) for name, tensor in network.state_dict().items())
    assert not torch.equal(run.initial_states[0][head + "weight"], run.initial_states[1][head + "weight"])


# ---- a round -------------------------------------------------------------------------------------


def test_a_round_keeps_only_what_every_network_kept(digits):
    run = search(digits)
    run.next_round()  # round 0: training only
    own_masks = [colt.magnitude_mask(colt.masked_magnitudes(network, run.mask), 0.15) for network in run.networks]
    total = masker.count_weights(run.mask)
    assert [masker.count_pruned(mask) for mask in own_masks] == [round(0.15 * total)] * 2

    record = run.next_round()
    for name, kept in run.mask.items():
        assert torch.equal(kept, own_masks[0][name] & own_masks[1][name])
    for network in run.networks:  # retrained under the shared mask: non-zero exactly where it keeps
        for name, weight in prunable_weights(network).items():
            assert torch.equal(weight != 0, run.mask[name])
    assert 0.15 <= record["effective_prune_rate"] <= 1 - 0.85**2
    assert record["effective_prune_rate"] == pytest.approx(masker.count_pruned(run.mask) / total)


def test_conv_sparsity_grows_between_the_agreeing_and_disagreeing_bounds(digits):
    run = search(digits, target_sparsity=0.9)
    run.next_round()
    one_weight = 1 / masker.count_weights(run.mask)
    for r in range(1, 4):
        record = run.next_round()
        assert not record["trimmed"]
        assert 1 - 0.85**r - r * one_weight <= record["sparsity_prunable"] <= 1 - 0.7225**r + r * one_weight


def test_rewind_restores_theta0_under_the_mask_and_zeros_elsewhere(digits):
    run = search(digits)
    run.next_round()
    run.next_round()  # networks retrained after the first merge
    for network, initial in zip(run.networks, run.initial_states):
        colt.rewind(network, initial, run.mask)
        for name, tensor in network.state_dict().items():
            if name in run.mask:
                assert torch.equal(tensor, initial[name] * run.mask[name])
                assert torch.count_nonzero(tensor[~run.mask[name]]) == 0
            else:  # BatchNorm, biases, running statistics and the head: back to their initial values
                assert torch.equal(tensor, initial[name])


def test_the_round_reaching_the_target_lands_exactly_and_leaves_the_networks_rewound(digits):
    run = search(digits, target_sparsity=0.05, over="prunable")  # one full round would overshoot
    run.next_round()
    record = run.next_round()
    assert run.done and record["trimmed"] and record["training_seconds"] == 0
    assert masker.count_pruned(run.mask) == run.target_pruned == round(0.05 * masker.count_weights(run.mask))
    for network, initial in zip(run.networks, run.initial_states):
        for name, tensor in network.state_dict().items():
            expected = initial[name] * run.mask[name] if name in run.mask else initial[name]
            assert torch.equal(tensor, expected)


# ---- LTH -------------------------------------------------------------------------------------------


def test_lth_is_colt_with_one_partition_and_twenty_percent(digits):
    config = hparams.lth_config("smoke")
    assert (config.partitions, config.prune_rate, config.method) == (1, 0.2, "LTH")
    assert hparams.colt_config("smoke").method == "COLT (P=2)"
    run = search(digits, partitions=1, prune_rate=0.2, target_sparsity=0.9)
    (network,) = run.networks
    assert network[-1].out_features == 10 and run.blocks[0].num_classes == 10
    # one network: it rewinds to exactly theta0, head included, which is what its ticket trains from
    assert all(torch.equal(tensor, run.initial_states[0][name]) for name, tensor in run.template.state_dict().items())
    run.next_round()
    remaining = masker.count_weights(run.mask)
    for _ in range(2):
        record = run.next_round()
        removed = round(0.2 * remaining)
        remaining -= removed
        assert record["remaining_weights"] == remaining
        assert record["effective_prune_rate"] == pytest.approx(0.2, abs=1e-3)


# ---- whole runs ------------------------------------------------------------------------------------


def test_a_run_reaches_the_target_exactly_with_a_working_ticket(digits, finished_run):
    _, result = finished_run
    ticket = result["model"]
    all_weights = sum(p.numel() for p in masker.weight_parameters(ticket).values())
    assert abs(result["ticket"]["sparsity_all"] - 0.5) <= 1 / all_weights
    assert result["ticket"]["test_accuracy"] > 0.5
    assert masker.global_sparsity(ticket, over="all") == pytest.approx(result["ticket"]["sparsity_all"])
    table = latency.rounds_table(result)
    assert list(table.columns) == [
        "round",
        "method",
        "sparsity_all",
        "sparsity_prunable",
        "remaining_weights",
        "effective_prune_rate",
        "trimmed",
        "block_val_accuracy",
        "mean_block_val_accuracy",
        "training_seconds",
        "pruning_seconds",
        "merge_seconds",
        "seconds",
        "cumulative_seconds",
        "device",
        "cached",
    ]
    assert table["round"].tolist() == list(range(len(table))) and len(table) >= 3
    assert table["effective_prune_rate"].iloc[1:-1].between(0.15, 0.2775).all()
    assert table["cumulative_seconds"].is_monotonic_increasing
    assert result["seconds"] == pytest.approx(table["seconds"].sum() + result["ticket"]["seconds"])
    assert not table["cached"].any() and not result["ticket"]["cached"]


class Interrupted(Exception):
    pass


def test_a_killed_run_resumes_from_its_last_finished_round(digits, finished_run, tmp_path, monkeypatch):
    calls = []
    train = colt.retrain

    def killed_in_round_two(*args, **kwargs):
        calls.append(kwargs["desc"])
        if len(calls) == 5:  # round 0 and round 1 trained both blocks; die in round 2
            raise Interrupted
        return train(*args, **kwargs)

    monkeypatch.setattr(colt, "retrain", killed_in_round_two)
    with pytest.raises(Interrupted):
        colt.run_colt(digits, TINY, folder=tmp_path, device="cpu", progress=False)
    monkeypatch.setattr(colt, "retrain", train)
    resumed = colt.run_colt(digits, TINY, folder=tmp_path, device="cpu", progress=False)

    assert [r["cached"] for r in resumed["rounds"]][:3] == [True, True, False]
    _, uninterrupted = finished_run
    assert all(torch.equal(resumed["mask"][name], kept) for name, kept in uninterrupted["mask"].items())
    assert resumed["ticket"]["test_accuracy"] == uninterrupted["ticket"]["test_accuracy"]

    again = colt.run_colt(digits, TINY, folder=tmp_path, device="cpu", progress=False)
    assert all(r["cached"] for r in again["rounds"]) and again["ticket"]["cached"]


def test_another_configuration_is_never_served_from_the_checkpoints(digits, finished_run, tmp_path):
    folder, _ = finished_run
    other = replace(TINY, prune_rate=0.3)
    cache = runcache.RunCache(tmp_path / "runs", "cpu")
    assert (
        cache.stage("colt", other, upstream=["data-x"]).folder != cache.stage("colt", TINY, upstream=["data-x"]).folder
    )
    # a checkpoint moved under another configuration's folder is refused, not reused
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in (colt.INITIAL, colt.STATE):
        (moved / name).write_bytes((folder / name).read_bytes())
    with pytest.raises(checkpoint.CheckpointError, match="another configuration"):
        colt.run_colt(digits, other, folder=moved, device="cpu", progress=False)
