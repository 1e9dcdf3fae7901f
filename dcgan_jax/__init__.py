"""dcgan_jax: DCGAN (Radford, Metz, Chintala 2015) in JAX/Flax."""

import os

# TensorFlow (the optional tfds extra) only reads TFDS datasets; keep its C++ start-up chatter out
# of the console.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault(
    "TF_ENABLE_ONEDNN_OPTS", "0"
)  # TF runs no model here; this also silences its start-up notice
