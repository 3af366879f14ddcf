"""Alerts as pure logic: what an alert says (`message`), when to hold one back for a digest (`limiter`), how
long to wait between tries (`retry`). The dispatcher that sends them lives in `calmops_actors/alerts/`."""
