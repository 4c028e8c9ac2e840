"""The MindSpore backend: :class:`~fishbench.backends.mindspore.backend.MindSporeBackend`."""
