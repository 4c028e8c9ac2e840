"""The PyTorch input pipeline: dataset and sampler, shared-memory collate, nvjpeg, prefetch, augment kernels."""
