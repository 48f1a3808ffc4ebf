"""tgkit: a study kit for teacher-guided one-shot pruning with context-aware knowledge distillation
(Alim et al., IEEE BigData 2025, arXiv 2511.16653).

The layers, bottom up; a module imports from its own layer and those below it only (tests/test_imports.py):

    util      tgkit.util: atomic files (checkpoint), the device and its clock (device), progress bars,
              the kit's errors, configuration as command-line flags, where files go by default
              (locations), workers that end with their sweep (lifeline); and tgkit.hparams, every setting
    method    the modules here, one concept each, in the order of the pipeline:
                  data           datasets by name, decoded once to uint8 tensors, fast batches with augmentation;
                                 your own DataLoaders for training (data.Loaders)
                  models         CIFAR-style ResNets built on torchvision, and a small CNN; PickLogits for a
                                 network of your own whose forward returns more than its logits
                  losses         CA-KLD on normalised logits, and the total teacher-guided loss
                  scorer         teacher-guided importance (bias-corrected EMA of |W * dL/dW|) and baselines
                  masker         global one-shot masks, sparsity reports, mask algebra, masks that survive save/load
                  mask_analysis  what masks do per layer
                  sensitivity    each layer pruned alone, without retraining: what it costs, ranked honestly
                  distillation   why KD helps or not: how soft the teacher's targets are, each loss term's gradient
                  train          one training loop, pruned weights kept at zero (MaskEnforcer)
                  retrainer      sparsity-aware retraining, with or without knowledge distillation
                  colt           the iterative baselines COLT and LTH
    deploy    tgkit.deploy: the sparse export, sparse convolutions, CPU inference backends
    report    tgkit.report: every figure and table, and the paper's reference numbers
    study     tgkit.study: the run cache, the cached pipeline, the sweep and its jobs, the notebooks'
              setup, the headless batch, the command line (`python -m tgkit run|sweep|batch`)
    bench     tgkit.bench: throughput, what a profile costs (a plan), the authors' loop (`python -m tgkit.bench`)

    from tgkit import losses, scorer, masker, retrainer      the method, as the notebooks use it
"""

__version__ = "0.1.0"
