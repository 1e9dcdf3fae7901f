"""Class-conditional DCGAN on the embedded digits: G draws the digit it is asked for (`sample
--class=3`)."""

from dcgan_jax import defaults


def get_config():
    config = defaults.load_config("digits")
    config.model.conditional.num_classes = 10
    config.num_fixed_samples = 80  # grids of 10 rows (one per digit) x 8
    config.optim.ema_decay = (
        0.99  # after 2,000 steps every digit is drawn right >= 94% of the time with it, the
    )
    # worst digit (8) 60% without it (docs/training.md, "Class-conditional DCGAN")
    return config
