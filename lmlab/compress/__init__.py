"""Post-training compression of a run's model (int8 quantisation, magnitude pruning), evaluated."""
