"""tgkit: a study kit for teacher-guided one-shot pruning with context-aware knowledge distillation.

The method, one concept per module, in the order of the pipeline (see README.md and the notebooks):

    data       datasets by name, decoded once to uint8 tensors, fast batches with augmentation
    models     CIFAR-style ResNets built on torchvision, and a small CNN for the digits smoke data
    losses     CA-KLD on normalised logits, and the total teacher-guided loss
    scorer     teacher-guided importance (bias-corrected EMA of |W * dL/dW|) and baseline criteria
    masker     global one-shot masks, sparsity reports, mask algebra, masks that survive save and load
    train      one training loop for teachers, students and retraining, pruned weights kept at zero
    retrainer  sparsity-aware retraining, with or without knowledge distillation
    colt       the iterative baselines COLT and LTH

Around it: `hparams` (every setting and profile), `runcache` and `pipeline` (the cached, resumable
run that the CLI and the notebooks call), `sweep`, `report` (every figure and table), `notebook`,
`batch`, `cli`, `bench` and `budget`.
"""

__version__ = "0.1.0"
