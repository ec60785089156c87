"""Synthetic training data that looks like real sparse velocity maps."""
