"""Networks and the math on them: the DCGAN generator and discriminator, their convolution forms and
batchnorm, latent-vector math, batched generation and the paper's D features. Pure functions of
arrays and variables."""
