"""Read-only Gradio UI over the projections of the log: `queries` (DataFrames), `app` (layout), `server` (launch)."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before any `import gradio` under ui/
