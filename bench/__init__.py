"""``make bench``: benchmarks of Switchboard against its targets (docs/benchmarks.md)."""
