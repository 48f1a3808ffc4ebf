"""What the kit costs on this machine: `python -m tgkit.bench` (see `bench.cli` for its four modes).

    throughput   images/s of every kind of training step, of scoring and of evaluation
    budget       what a profile's notebook batch costs at such rates: a plan, not a measurement
    comparator   the authors' style of training loop, timed beside the kit's

The CPU inference table (`--inference`) is `tgkit.deploy.inference`'s.
"""
