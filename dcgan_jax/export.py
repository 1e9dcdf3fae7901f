"""`python -m dcgan_jax.export`: the command-line entry point in dcgan_jax/cli/export.py."""

from dcgan_jax.cli.export import run

if __name__ == "__main__":
    run()
