"""MNIST from its original idx files, at 32x32 grey: the same data as configs/mnist.py (TFDS), read
without TFDS.

--config.data.data_path (default ~/data/mnist) is the folder holding train-images-idx3-ubyte(.gz),
train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, in either naming style
(`train-images.idx3-ubyte`), or torchvision's MNIST/ folder (its raw/ is found) or the root above
it. The same config reads KMNIST, and EMNIST with the set named:
--config.data.data_path=DIR/emnist-letters (dcgan_jax/data/idx.py).

Why these values: those of configs/mnist.py (32 px, the smallest size of the paper's architecture
that holds a 28 px digit; the paper's batch 128 and Adam settings from the base config), so a run
here and one on TFDS's MNIST train on the same images alike.
"""

from dcgan_jax import defaults


def get_config():
    config = defaults.load_config("mnist")
    config.data.dataset = "idx"
    config.data.data_path = "~/data/mnist"
    return config
