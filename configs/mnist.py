"""MNIST from TFDS, padded/resized to 32x32 grayscale."""

from dcgan_jax import defaults


def get_config():
    config = defaults.get_config()
    config.data.dataset = "mnist"
    config.model.image_size = 32
    config.model.num_channels = 1
    config.batch_size = 128
    config.num_train_steps = 10_000
    return config
