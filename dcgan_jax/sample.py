"""`python -m dcgan_jax.sample`: the command-line entry point in dcgan_jax/cli/sample.py."""

from dcgan_jax.cli.sample import run

if __name__ == "__main__":
    run()
