"""Pure pipeline logic: events, state fold, decisions, config, intake, drift, evaluation, strategies.

Imports no outer layer (ray, sqlite3, sqlite_utils, gradio, watchdog, eventstore, calmops_actors, ui);
`tests/unit/test_boundaries.py` enforces it.
"""
