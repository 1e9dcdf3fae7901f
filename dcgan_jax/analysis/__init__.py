"""Analysis of trained runs: samples, the paper's latent-space figures, filter dropping, nearest
neighbours and training animations. Plain functions of a model (config.model), a trained run's
variables (`training.run.open_run`) and latent points, returning pictures."""
