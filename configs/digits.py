"""The embedded default: scikit-learn's 1,797 bundled 8x8 digits at 32x32, trains offline in minutes
on a CPU."""

from dcgan_jax import defaults


def get_config():
    config = defaults.get_config()
    config.data.dataset = "digits"
    config.model.image_size = 32
    config.model.num_channels = 1
    config.model.g_width = 32
    config.model.d_width = 32
    config.batch_size = 64
    config.num_train_steps = 2000
    config.log_every_steps = 100
    config.sample_every_steps = 200
    config.checkpoint_every_steps = 500
    return config
