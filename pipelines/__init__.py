"""Pure pipeline logic, in a few packages whose names say what is inside (docs/ARCHITECTURE.md has the map):

- `core`: events, state (`evolve`), decide, rounds, promotion, metrics, intake: the rules of the pipeline;
- `config`: the config and every section's settings (stdlib only);
- `drift`: the drift tests, the decision rule, and one block's whole check (`assess_block`);
- `retraining`: the strategies, the holdout, IPIP, models and scoring;
- `replay`: the fast path of rebuilding state (fold, snapshot), equal to `core.state`'s reference fold;
- `read_model`: the read tables and the explanations people read;
- `synthetic`: generated streams with known drift.

Imports no outer layer (ray, sqlite3, sqlite_utils, gradio, watchdog, eventstore, calmops_actors, ui);
`tests/unit/test_boundaries.py` enforces it.
"""
