"""An exponential moving average of G's weights and batchnorm statistics (`optim.ema_decay`, 0 =
off).

Averaging G over its last few hundred updates smooths the oscillation of GAN training (Yazıcı et al.
2019, "The Unusual Effectiveness of Averaging in GAN Training"; StyleGAN's G_ema). When on, the
average is what samples, evaluations and every tool use; the trained G stays in the state for
training.
"""

from typing import Any

import jax
import jax.numpy as jnp


def decay_at(decay: float, step: jax.Array) -> jax.Array:
    """The decay used at `step` (1-based count of updates): min(decay, (1 + step) / (10 + step)).

    Early on the average would otherwise be dominated by the random init for ~1 / (1 - decay) steps;
    the ramp (as in TensorFlow's ExponentialMovingAverage with num_updates) lets it follow G from
    the start."""
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(jnp.float32(decay), (1.0 + step) / (10.0 + step))


def update(average: Any, current: Any, decay: jax.Array) -> Any:
    """decay * average + (1 - decay) * current, leaf by leaf (in the average's dtype, float32)."""
    return jax.tree.map(
        lambda a, c: (decay * a + (1.0 - decay) * c.astype(a.dtype)).astype(a.dtype),
        average,
        current,
    )


def start(g_params: Any, g_batch_stats: Any) -> Any:
    """The average's first value: G itself (at init, or when a run turns EMA on at a resume)."""
    return {"params": g_params, "batch_stats": g_batch_stats}
