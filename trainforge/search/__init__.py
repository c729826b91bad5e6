"""Time-budgeted model search: budgets, search spaces and the tuner (docs/search.md)."""
