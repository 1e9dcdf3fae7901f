"""`python -m dcgan_jax.evaluate`: the command-line entry point in dcgan_jax/cli/evaluate.py."""

from dcgan_jax.cli.evaluate import run

if __name__ == "__main__":
    run()
