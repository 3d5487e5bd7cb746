"""Audits of a run: what its corpus says about groups of people, and what its model prefers."""
