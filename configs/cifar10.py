"""CIFAR-10 from TFDS at 32x32 RGB."""

from dcgan_jax import defaults


def get_config():
    config = defaults.get_config()
    config.data.dataset = "cifar10"
    config.model.image_size = 32
    config.model.num_channels = 3
    config.batch_size = 128
    config.num_train_steps = 50_000
    return config
