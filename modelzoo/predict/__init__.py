"""Prediction on raw text: words with character offsets, one IOB2 tag per word, entity spans, outputs."""
