"""Writes a prepared cache once (dcgan_jax/data/prepare.py), so training reads preprocessed images
at memory speed:

  python -m dcgan_jax.prepare --config=configs/lsun.py --config.data.dataset=lsun_lmdb \\
      --config.data.data_path=/data/bedroom_train_lmdb --output=/data/lsun_bedroom_64
  python -m dcgan_jax.main --config=configs/lsun.py --config.data.dataset=prepared \\
      --config.data.data_path=/data/lsun_bedroom_64

--dedup removes near duplicates first, as the paper did for LSUN bedrooms (Sec. 4.1.1).

SIGTERM or Ctrl-C stops it cleanly: one line says so, the partial cache is removed, an existing cache
is unchanged, and the exit status is the shell's for that signal (143, 130).
"""

import os
import sys
import time

from absl import flags
from ml_collections import config_flags

from dcgan_jax import config_fields, defaults
from dcgan_jax.cli import common
from dcgan_jax.data import dedup, prepare
from dcgan_jax.errors import UserError

_OUTPUT = flags.DEFINE_string(
    "output",
    None,
    "Directory to write the cache to (created; an old cache there is "
    "replaced once the new one is complete).",
)
_DEDUP = flags.DEFINE_bool(
    "dedup",
    False,
    "Drop near duplicates (the paper's LSUN deduplication: a denoising "
    "autoencoder's binarized codes, config.dedup.*, dcgan_jax/data/dedup.py).",
)
with common.flag_errors():
    _CONFIG = config_flags.DEFINE_config_file(
        "config",
        defaults.config_path("digits"),
        "Config naming the data "
        "(data.dataset, data.data_path, data.data_dir, data.split) and its "
        "size (model.image_size, model.num_channels).",
        lock_config=True,
    )


@common.run_main
def main(argv):
    del argv
    if not _OUTPUT.value:
        raise UserError("--output is required: the directory to write the prepared cache to")
    with common.flag_errors():
        config = _CONFIG.value
        config.data.dataset  # noqa: B018 (a first use: loads the file inside the guard)
    config_fields.validate(config)  # a cache training would refuse is not worth writing
    start = time.time()
    find = (
        (lambda images: dedup.find_duplicates(images, config.dedup, config.seed))
        if _DEDUP.value
        else None
    )
    size, channels = config.model.image_size, config.model.num_channels
    try:
        info = prepare.write_cache(
            config.data,
            size,
            channels,
            _OUTPUT.value,
            dedup=find,
            max_removed_fraction=config.dedup.max_removed_fraction,
        )
    except prepare.Stopped as stopped:  # asked to stop, not an error
        print(stopped, file=sys.stderr, flush=True)
        sys.exit(stopped.exit_status)
    if _DEDUP.value:
        print(
            f"removed {info['removed_duplicates']:,} near duplicates; their list (and the image each duplicates) "
            f"is in {os.path.join(_OUTPUT.value, info['duplicates_file'])}",
            flush=True,
        )
    print(
        f"wrote {info['shape'][0]:,} images of {size}x{size}x{channels} to {_OUTPUT.value} in "
        f"{time.time() - start:.0f}s ({info['left_out_unreadable']} unreadable left out); train with "
        f"--config.data.dataset=prepared --config.data.data_path={_OUTPUT.value}",
        flush=True,
    )


def run() -> None:
    common.start(main)


if __name__ == "__main__":
    run()
