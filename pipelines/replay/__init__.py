"""The fast path of rebuilding state from a long log, equal to the reference fold (`core.state.replay`):
`fold` (runs of block events gathered and written once), `snapshot` (the state as JSON columns),
`column_map` (a snapshot's big maps, built lazily). Checked against `evolve` by tests/unit/test_fast_*.
"""
