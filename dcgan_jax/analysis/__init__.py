"""Analysis of trained runs: samples, the paper's latent-space figures, filter dropping, nearest neighbours and
training animations. Plain functions of an opened run (`training.run.open_run`) returning pictures."""
