"""Read-only Gradio UI over the projections of the log."""
