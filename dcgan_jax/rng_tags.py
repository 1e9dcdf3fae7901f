"""Every random stream's tag, in one table: each draw is `fold_in(key, TAG)` (or a NumPy generator
seeded with `[seed, TAG]`), so no two streams share numbers and every draw stays a function of
(seed, step, example index).

Changing a value changes the runs' numbers (and the old-checkpoint fixtures' replayed samples): add
tags, never renumber them.
"""

# Inside the train step, from that step's key fold_in(state.rng, step) (dcgan_jax/training/).
D_TARGETS = 0x7FFF_0001  # D's per-example targets: label noise and flips (training/d_training.py)
INSTANCE_NOISE = 0x7FFF_0002  # gaussian noise added to D's inputs (training/d_training.py)
FAKE_CLASSES = (
    0x7FFF_0003  # the fake examples' classes of a class-conditional run (training/step.py)
)

# From PRNGKey(config.seed).
FIXED_GRID_Z = 0x5A  # the fixed-z training grid (training/grids.py)
RANDOM_GRID_Z = 0x52  # the fresh-z training grid, then fold_in(step) (training/grids.py)
EVAL_Z = 0xF1D  # the z of FID/KID samples (evaluation/fid.py)
CLASS_ACCURACY_Z = 0xC1A5  # the z of class-accuracy samples (evaluation/class_accuracy.py)

# NumPy generators seeded with [seed, TAG].
EVAL_REAL_ORDER = (
    0xE7A1  # which real images FID/KID compare against, plus the call's offset (evaluation/fid.py)
)
PROBE_SPLIT = 0x7A1  # the probe's train/validation split (data/labelled.py)
PROBE_LABELLED = 0x1AB  # the probe's labelled examples per class (data/labelled.py)
