"""CelebA faces at 64x64 RGB (TFDS 'celeb_a', or dataset='image_folder' on img_align_celeba)."""

from dcgan_jax import defaults


def get_config():
    config = defaults.get_config()
    config.data.dataset = "celeb_a"
    config.model.image_size = 64
    config.model.num_channels = 3
    config.batch_size = 128
    config.num_train_steps = 50_000
    return config
