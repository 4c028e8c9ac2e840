"""Multiruns: the summary callback and resuming a sweep."""
