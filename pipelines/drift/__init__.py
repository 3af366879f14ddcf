"""Drift detection: `features` (per-feature tests by column type, multiple-testing correction, effect sizes),
`multivariate` (MMD), `concept` (detectors on the error stream, the performance check), `decision` (the
decision rule and its reasons in words), `results` (the records a check produces, light), and
`block_check` (`assess_block`: one block's whole check, which the actor records and `audit` re-runs).
"""
