"""Inference for fitted models: tests, intervals, predictions, R-squared."""
