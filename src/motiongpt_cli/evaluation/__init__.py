"""Evaluation: the field's text-to-motion metrics and evaluators."""
