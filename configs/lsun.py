"""LSUN bedrooms with the paper's settings: 64x64x3, batch 128, Adam 2e-4/0.5, z in [-1, 1]^100.

G is the paper's Figure 1 network: project z to 4x4x1024, then 512, 256, 128 and 3 channels (g_width=128).
D mirrors dcgan.torch (64, 128, 256, 512). The TFDS builder needs tensorflow-io; the official LMDB export does not:
  --config.data.dataset=lsun_lmdb --config.data.data_path=/data/bedroom_train_lmdb
"""

from dcgan_jax import defaults


def get_config():
    config = defaults.get_config()
    config.data.dataset = "lsun/bedroom"
    config.model.image_size = 64
    config.model.num_channels = 3
    config.model.latent_dim = 100
    config.model.g_width = 128
    config.model.d_width = 64
    config.batch_size = 128
    config.optim.learning_rate = 2e-4
    config.optim.beta1 = 0.5
    config.num_train_steps = 100_000  # ~4 epochs of the 3M bedrooms
    config.sample_every_steps = 1000
    config.checkpoint_every_steps = 2000
    return config
