"""The benchmarks' own tests: pure checks of their bookkeeping (tables, rows, targets), no timed assertion."""
