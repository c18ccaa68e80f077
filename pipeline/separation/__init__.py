"""Separation inference (model inputs, masks -> waveforms, overlap-add) and its scores."""
