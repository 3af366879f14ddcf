"""Synthetic data with known drift: `scenarios` (River streams in blocks, with a manifest of what changed) and
`shifts` (injecting a shift into real blocks).
"""
