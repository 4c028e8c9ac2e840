"""Shared data code: the dataset index, the transform numbers, image reading, embedded digits."""
