"""`python -m dcgan_jax.main`: the command-line entry point in dcgan_jax/cli/main.py."""

from dcgan_jax.cli.main import run

if __name__ == "__main__":
    run()
