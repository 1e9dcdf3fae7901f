"""The seed documents' take-aways as a study: configs/fashion_mnist.py (the paper's DCGAN) against
each of their tricks and a second learning rate, 8 seeds each, all 48 runs one population trained
by one compiled step (docs/populations.md, "A study: the seeds' tricks over 8 seeds").

  python -m dcgan_jax.main --config=configs/fashion_mnist_study.py --workdir=runs/study
  python -m dcgan_jax.evaluate --workdir=runs/study --task=fid --extractor=inception \
      --inception_weights=~/.cache/dcgan_jax/fid_inception/default_1.pt --protocol=test10k

`evaluate` scores every member with the real-Inception FID (10,000 samples against the 10,000 test
images), prints FID mean, std and min per variant over its 8 seeds, and plots the distributions to
runs/study/eval_fid.png. Member m is variant m // 8 with seed m % 8 (`export --member=m` writes it
out as the plain run it is).

Why these variants: each changes one thing from the paper's recipe, at a value the seed documents
or their sources use. Learning rate 1e-3 is Adam's default, which the paper found too high
("learning rate = 0.0002 overriding the default 0.001"). D pre-training is the Keras card's
"add pre-training of discriminator": about one epoch (469 batches of 128), so 500 steps. Label
smoothing 0.1 is one-sided (real targets 0.9, Salimans et al. 2016). Label noise 0.1 with flips
0.05 and instance noise 0.1 annealed to 0 over the run are ganhacks' "noisy labels" and "add noise
to inputs, decay over time" (docs/training.md, "How D is trained"). Every other field is fashion_mnist.py's,
its moving average of G included: each member is scored on its average, which does not change its
training (`evaluate --task=fid --noema` scores the members' trained Gs, into a table of its
own; a member written out with `export` gets both rows from `evaluate --task=fid`).

Cost: 48 members x 6,000 steps. On this project's 2-core CPU a member trains at a single run's
speed (the loop form), about 30 minutes each; on a GPU the vmap form trains them side by side.
"""

from dcgan_jax import defaults

SEEDS = 8
# (name, {field: value}) per variant; a field a variant leaves out has the paper's value (BASE)
VARIANTS = (
    ("paper", {}),
    ("lr 1e-3", {"optim.learning_rate": 1e-3}),
    ("D pre-training", {"d_training.pretrain_steps": 500}),
    ("label smoothing", {"objective.label_smoothing": 0.1}),
    ("label noise + flips", {"d_training.label_noise": 0.1, "d_training.label_flip": 0.05}),
    (
        "instance noise",
        {"d_training.instance_noise": 0.1, "d_training.instance_noise_decay_steps": 6000},
    ),
)
BASE = {
    "optim.learning_rate": 2e-4,
    "d_training.pretrain_steps": 0,
    "objective.label_smoothing": 0.0,
    "d_training.label_noise": 0.0,
    "d_training.label_flip": 0.0,
    "d_training.instance_noise": 0.0,
    "d_training.instance_noise_decay_steps": 0,
}


def vary() -> str:
    """population.vary for VARIANTS x SEEDS: member m is variant m // SEEDS."""
    parts = []
    for field, base in BASE.items():
        values = [changes.get(field, base) for _, changes in VARIANTS for _ in range(SEEDS)]
        parts.append(f"{field}={','.join(f'{v:g}' for v in values)}")
    return ";".join(parts)


def get_config():
    config = defaults.load_config("fashion_mnist")
    config.population.size = len(VARIANTS) * SEEDS
    config.population.seeds = ",".join(str(s) for _ in VARIANTS for s in range(SEEDS))
    config.population.vary = vary()
    return config
