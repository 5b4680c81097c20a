"""Scoring: explainable scorers from plugins, run isolated, on the data members consent to."""
