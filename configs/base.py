"""Hyperparameters shared by every config. Each field is documented once, here; configs override what differs."""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()

    # Data (see dcgan_jax/input_pipeline.py).
    config.dataset = "digits"       # 'digits' (embedded), a TFDS name, 'lsun_lmdb', 'image_folder' or 'prepared'
    config.data_dir = ""            # TFDS data_dir ('' = TFDS default, ~/tensorflow_datasets)
    config.data_path = ""           # LMDB directory, image folder or prepared cache
    config.split = "train"
    config.image_size = 32          # 32, 64 or 128
    config.num_channels = 1         # 1 (grayscale) or 3 (RGB)
    config.shuffle_seed_offset = 1  # data order = f(seed + offset, step): exact resume
    config.num_data_workers = 0     # decoding processes; 0 = all cores
    config.prefetch_batches = 2     # batches decoded ahead of the training step (beyond one per worker)
    config.max_in_memory_mb = 4096  # TFDS splits in TFRecord format up to this size (preprocessed) load into memory;
                                    # larger: `python -m dcgan_jax.prepare` once (dcgan_jax/tfds_source.py)

    # Model (dcgan_jax/models.py). g_width: channels of G's last hidden layer (the 4x4 layer has g_width * 2**(n-1)).
    config.latent_dim = 100
    config.z_distribution = "uniform"  # the paper: uniform in [-1, 1]; or 'normal'
    config.g_width = 64
    config.d_width = 64
    config.upsample = "subpixel"       # "subpixel" (fast exact forms, see models.py) or "transpose" (XLA's own); same math
    config.bn_momentum = 0.9           # running average decay (PyTorch's momentum 0.1)
    config.bn_epsilon = 1e-5
    config.sync_batchnorm = True       # batch statistics over the global batch (all devices) in training
    config.compute_dtype = "float32"   # 'bfloat16' on GPU/TPU; params and optimizer states stay float32

    # Optimization (the paper: Adam, lr 2e-4, beta1 0.5, batch 128).
    config.loss = "non_saturating"     # 'non_saturating', 'minimax', 'least_squares' or 'hinge'
    config.label_smoothing = 0.0       # one-sided: real targets 1 - label_smoothing
    config.batch_size = 128            # global, over all devices of all hosts
    config.num_train_steps = 10_000
    config.learning_rate = 2e-4
    config.beta1 = 0.5
    config.beta2 = 0.999
    config.adam_eps = 1e-8
    config.seed = 0
    config.parallelism = "pmap"        # 'pmap' or 'shard_map' (same step body, 1-D device mesh)

    # Outputs.
    config.log_every_steps = 50
    config.sample_every_steps = 500
    config.checkpoint_every_steps = 1000
    config.keep_checkpoints = 3
    config.num_fixed_samples = 64      # the fixed-z grid saved under workdir/samples/

    # Evaluation during training (dcgan_jax/evaluate.py); 0 disables.
    config.eval_every_steps = 0
    config.eval_num_samples = 1000
    config.eval_split = "test"               # held-out real images FID/KID compare against (capped at its size)
    config.eval_batch_size = 256             # inference batch for generators, D features and FID extractors
    config.eval_feature_extractor = "classifier"  # FID/KID features: 'classifier' (trained here) or 'inception'
    config.eval_inception_weights = ""       # .npz of InceptionV3 weights (see dcgan_jax/inception.py)
    config.eval_kid_subsets = 100            # KID: mean/std of the unbiased MMD^2 over this many random subsets
    config.eval_kid_subset_size = 1000       # ... of this size (capped at the smaller set)
    # The FID classifier (dcgan_jax/classifier.py), trained once on a labelled dataset and cached.
    config.eval_classifier_dataset = ""      # '' = config.dataset; 'digits' or a supervised TFDS name
    config.eval_classifier_dir = ""          # '' = ~/.cache/dcgan_jax/classifiers/<dataset>_<size>px_<C>ch
    config.eval_classifier_steps = 1000      # ~98% on digits; raise for CIFAR-10 (e.g. 20_000 on a GPU)
    config.eval_classifier_batch_size = 64
    config.eval_classifier_learning_rate = 1e-3
    config.eval_classifier_width = 32        # channels of the first conv block (doubling per block)
    config.eval_classifier_feature_dim = 128  # penultimate layer: the FID/KID feature space
    config.eval_classifier_max_shift = 2     # augmentation: random translations up to this many pixels
    # The paper's D-feature linear probe (`evaluate --task=classify`).
    config.eval_labels_per_class = 0         # labelled training examples per class (0 = all; SVHN paper: 100)
    config.eval_validation_fraction = 0.1    # of the train split, held out to choose the SVM's C
    config.eval_svm_c_values = (1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # the paper: 1e-4...1e-2
    config.eval_svm_max_iter = 5000
    config.eval_recompute_batch_stats = True  # D's batchnorm statistics re-estimated on the labelled train images
    return config
