"""`python -m calmops_actors` is the same program as the `calmops` console script."""

from calmops_actors.cli import main

raise SystemExit(main())
