"""Workers for peer comparisons. Each runs inside its peer's own virtual environment, not the project's."""
