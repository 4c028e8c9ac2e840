"""The PyTorch backend: :class:`~fishbench.backends.pytorch.backend.PyTorchBackend`."""
