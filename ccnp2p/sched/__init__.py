"""Placement: capability records, affinity scoring, candidate ranking."""
