"""Collapse: D has won completely and G no longer learns (the common GAN failure that is not a divergence).

The sign, at logged steps: D(G(z)) (the mean probability D gives G's samples) below `config.collapse.d_fake` AND G's
loss above `config.collapse.loss_factor` times its running median (over the logged steps before), for
`config.collapse.patience` logged steps in a row. Then G's gradient has all but vanished (the non-saturating loss
saturates less, but a D that rejects everything still leaves G without direction). The loop warns once per streak,
naming the last checkpoint before the streak began, and with `config.collapse.stop` stops there.
"""

import statistics
from typing import Dict, List, Optional

import ml_collections


class CollapseDetector:
    """Fed the metrics of each logged step; `update` returns the step the streak began when it reaches
    `patience` logged steps (once per streak), else None."""

    def __init__(self, d_fake_below: float, loss_factor: float, patience: int):
        self.d_fake_below, self.loss_factor, self.patience = d_fake_below, loss_factor, patience
        self.history: List[float] = []  # g_loss of the logged steps outside any streak
        self.streak: List[int] = []

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> "CollapseDetector":
        return cls(config.collapse.d_fake, config.collapse.loss_factor, config.collapse.patience)

    def update(self, step: int, metrics: Dict[str, float]) -> Optional[int]:
        if not self.patience:
            return None
        level = statistics.median(self.history) if self.history else None
        collapsed = (metrics["d_fake"] < self.d_fake_below and level is not None
                     and metrics["g_loss"] > self.loss_factor * max(level, 1e-6))
        if not collapsed:
            self.streak = []
            self.history.append(metrics["g_loss"])
            return None
        self.streak.append(step)
        return self.streak[0] if len(self.streak) == self.patience else None
