"""Retraining: `material` (what a strategy trains on and returns), `strategies` (full, incremental, windowed,
stacking, replay_mix, recalibration, and `build_round`: the holdout cut), `ipip` (ensembles of ensembles for
rare events), `models` (building the configured estimator), `evaluation` (scoring, the holdout split).
"""
