"""Downstream evaluation and supervised learning: tasks scored by log-likelihood, classification
metrics with bootstrap intervals, validation schemes, in-loop evaluation, fine-tuning, overfitting control."""
