"""Read-only Gradio UI over the projections of the log: `queries` (DataFrames), `app` (layout), `server` (launch).

`plot_text` escapes user text for Plotly; `hosts` and `login` are the HTTP guards `server` puts in front of
Gradio (Host names, the login on every route, the brake on password guessing); `asgi` is what they share.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before any `import gradio` under ui/
