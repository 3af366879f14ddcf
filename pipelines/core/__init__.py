"""The decision core: what happened (`events`), what it adds up to (`state`: `evolve` and the reference fold),
what may happen next (`decide`, `rounds`, `promotion`), and the intake rules that turn a file into blocks.

Modules: `events` (the catalog), `state` (`PipelineState`, `evolve`), `decide` (commands -> events),
`rounds` (when a retraining round starts, on which blocks), `promotion` (the promotion rule), `metrics`
(metric names and directions), `schema`, `intake` (file -> validated blocks), `text` (how text is shown).
Light on purpose: importing a package imports nothing heavy; import the module you need.
"""
