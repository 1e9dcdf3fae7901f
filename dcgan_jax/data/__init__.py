"""Data: image sources (embedded digits, LSUN LMDB, image folders, prepared caches, TFDS),
preprocessing, parallel decoding, and training batches in an order that is a function of (seed,
step). No model code here."""
