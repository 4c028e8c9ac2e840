"""Helpers the tests share beside conftest.py: RunIf, image trees, the processes running."""
