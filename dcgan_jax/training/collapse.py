"""Training going wrong: divergence (non-finite losses or params) stops the run; collapse (D has won
completely and G no longer learns, the common GAN failure that is not a divergence) warns, or stops
with collapse.stop.

The sign of collapse, at logged steps: D(G(z)) (the mean probability D gives G's samples) below
`collapse.d_fake` AND G's loss above `collapse.loss_factor` times its running median (over the
logged steps before), for `collapse.patience` logged steps in a row. Then G's gradient has all but
vanished (the non-saturating loss saturates less, but a D that rejects everything still leaves G
without direction). The loop warns once per streak, naming the last checkpoint before the streak
began, and with `collapse.stop` stops there.
"""

import statistics
from collections.abc import Callable

import ml_collections

from dcgan_jax.errors import UserError


class CollapseDetector:
    """Fed the metrics of each logged step; `update` returns the step the streak began when it
    reaches `patience` logged steps (once per streak), else None."""

    def __init__(self, d_fake_below: float, loss_factor: float, patience: int):
        self.d_fake_below, self.loss_factor, self.patience = d_fake_below, loss_factor, patience
        self.history: list[float] = []  # g_loss of the logged steps outside any streak
        self.streak: list[int] = []

    @classmethod
    def from_config(cls, collapse: ml_collections.ConfigDict) -> "CollapseDetector":
        return cls(collapse.d_fake, collapse.loss_factor, collapse.patience)

    def update(self, step: int, metrics: dict[str, float]) -> int | None:
        if not self.patience:
            return None
        level = statistics.median(self.history) if self.history else None
        collapsed = (
            metrics["d_fake"] < self.d_fake_below
            and level is not None
            and metrics["g_loss"] > self.loss_factor * max(level, 1e-6)
        )
        if not collapsed:
            self.streak = []
            self.history.append(metrics["g_loss"])
            return None
        self.streak.append(step)
        return self.streak[0] if len(self.streak) == self.patience else None


class DivergenceError(UserError):
    """Non-finite losses or params: training stops and the last good checkpoint is kept."""


def check_finite(metrics: dict[str, float], step: int, manager) -> None:
    """Raises DivergenceError when the step's `finite` flag says a loss or a param is NaN/inf,
    naming the last good checkpoint of `manager` (an orbax CheckpointManager)."""
    if metrics["finite"] == 1.0:
        return
    manager.wait_until_finished()
    last_good = manager.latest_step()
    kept = (
        f"the last good checkpoint is step {last_good} in {manager.directory} (kept)"
        if last_good is not None
        else "no checkpoint was saved before it"
    )
    raise DivergenceError(
        f"training diverged: non-finite loss or params at step {step} "
        f"(d_loss {metrics['d_loss']}, g_loss {metrics['g_loss']}); {kept}; "
        f"lower optim.learning_rate or change the seed, then rerun"
    )


def check_collapse(
    collapse: ml_collections.ConfigDict,
    detector: CollapseDetector,
    step: int,
    metrics: dict[str, float],
    manager,
    say: Callable[[str], None],
) -> None:
    """Warns through `say` (or, with collapse.stop, stops) once D has won completely for
    collapse.patience logged steps, naming the last checkpoint of `manager` from before the
    streak."""
    began = detector.update(step, metrics)
    if began is None:
        return
    before = [s for s in manager.all_steps() if s < began]
    kept = (
        f"the last checkpoint before it is step {max(before)} in {manager.directory}"
        if before
        else "no checkpoint predates it"
    )
    text = (
        f"D has won completely since step {began} (D(G(z)) < {collapse.d_fake} and g_loss > "
        f"{collapse.loss_factor}x its running level for {collapse.patience} logged steps): G is "
        f"no longer learning; {kept}; restart from it (--config.init_from=DIR:STEP) with a lower learning rate "
        f"or label smoothing"
    )
    if collapse.stop:
        raise UserError(f"stopped: {text}")
    say(f"warning: {text}")
