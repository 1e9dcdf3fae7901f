"""`python -m dcgan_jax.prepare`: the command-line entry point in dcgan_jax/cli/prepare.py."""

from dcgan_jax.cli.prepare import run

if __name__ == "__main__":
    run()
