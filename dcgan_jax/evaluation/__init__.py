"""Evaluation: FID/KID (with a classifier trained here or InceptionV3), the paper's D-feature linear
probe, result tables. Works on config groups (config.eval as `ev`, config.model, config.data) and
flax variables; it never imports training (the loop receives `fid.make_training_evaluator`'s
evaluator)."""
