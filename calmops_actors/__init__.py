"""calmops-actors: the Ray shells, the CLI, the watcher and the artifact store around the pure pipeline logic."""

__version__ = "0.1.0"
