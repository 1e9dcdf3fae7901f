"""Training: the train state, the pmapped/shard_mapped D+G step, the loop, checkpoints, preemption,
multi-host start-up and what a run reports. Knows nothing of evaluation: the loop receives an
evaluator."""
