"""The train state: everything that changes during training, in one explicit pytree."""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from dcgan_jax.nn import models
from dcgan_jax.training import ema as ema_lib


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training; nothing hides in module state."""

    step: jax.Array
    g_params: Any
    g_batch_stats: Any
    d_params: Any
    d_batch_stats: Any
    g_opt_state: Any
    d_opt_state: Any
    rng: jax.Array  # raw uint32 key data; per-step keys are fold_in(rng, step)
    # {'params', 'batch_stats'}: the moving average of G (optim.ema_decay > 0), else None. None is
    # not saved, so checkpoints of runs without it (and of versions before it) have the same layout.
    ema: Any = None

    @property
    def g_variables(self) -> dict[str, Any]:
        """The trained G's flax variables, as `Generator.apply` takes them."""
        return {"params": self.g_params, "batch_stats": self.g_batch_stats}

    @property
    def sampling_g_variables(self) -> dict[str, Any]:
        """The G that samples and evaluations use: the moving average when the run keeps one, else
        the trained G."""
        return dict(self.ema) if self.ema is not None else self.g_variables

    @property
    def d_variables(self) -> dict[str, Any]:
        """D's flax variables, as `Discriminator.apply` takes them."""
        return {"params": self.d_params, "batch_stats": self.d_batch_stats}


def make_optimizers(optim: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation, ...]:
    """Adam for G and for D (the paper: lr 2e-4, beta1 0.5)."""

    def adam():
        return optax.adam(optim.learning_rate, b1=optim.beta1, b2=optim.beta2, eps=optim.adam_eps)

    return adam(), adam()


def create_train_state(
    model: ml_collections.ConfigDict, optim: ml_collections.ConfigDict, seed: int
) -> TrainState:
    """A fresh state on the host, identical for any device count; params in float32."""
    init_rng, train_rng = jax.random.split(jax.random.PRNGKey(seed))
    g_vars, d_vars = models.init_variables(init_rng, model)
    g_tx, d_tx = make_optimizers(optim)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        g_params=g_vars["params"],
        g_batch_stats=g_vars["batch_stats"],
        d_params=d_vars["params"],
        d_batch_stats=d_vars["batch_stats"],
        g_opt_state=g_tx.init(g_vars["params"]),
        d_opt_state=d_tx.init(d_vars["params"]),
        rng=train_rng,
        ema=ema_lib.start(g_vars["params"], g_vars["batch_stats"]) if optim.ema_decay else None,
    )


def set_ema(state: TrainState, on: bool) -> TrainState:
    """The state with a moving average of G (started from G itself when it had none) or without one.
    Works on abstract states too: restoring a checkpoint uses the layout the checkpoint was saved
    with, then this one."""
    if not on:
        return state.replace(ema=None)
    return (
        state
        if state.ema is not None
        else state.replace(ema=ema_lib.start(state.g_params, state.g_batch_stats))
    )
