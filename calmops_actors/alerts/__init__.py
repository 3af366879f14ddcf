"""Alert delivery: sinks that send one JSON body (`sinks`), the dispatcher that follows the log and records
what each sink answered (`dispatcher`), and its checkpoints (`checkpoint`). The rules are pure, in
`pipelines/alerts/`; docs/alerts.md is the user's page."""
