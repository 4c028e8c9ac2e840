"""fishbench: train and evaluate FishNet99 and ResNet50 with PyTorch or MindSpore."""

__version__ = "0.1.0"
