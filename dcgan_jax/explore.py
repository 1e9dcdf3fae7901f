"""`python -m dcgan_jax.explore`: the command-line entry point in dcgan_jax/cli/explore.py."""

from dcgan_jax.cli.explore import run

if __name__ == "__main__":
    run()
