"""A pipeline's config, validated on load: `pipeline` (`PipelineConfig`, `config_from_dict`, the TOML bounds),
`builder` (the generic settings builder and its messages), and one module per section's settings that is
more than a few keys: `drift` (`[drift]`, its overrides, `[drift.multivariate]`) and `retrain` (`[retrain]`).

Settings only, stdlib only: the numeric modules import these, never the reverse.
"""
