"""Class-conditional DCGAN on CIFAR-10 (TFDS, with its 10 labels): one G and D for all classes, a
projection D."""

from dcgan_jax import defaults


def get_config():
    config = defaults.load_config("cifar10")
    config.model.conditional.num_classes = 10
    config.num_fixed_samples = 100  # grids of 10 rows (one per class) x 10
    return config
