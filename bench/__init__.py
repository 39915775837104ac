"""On-demand benchmarks of shardgate beside the limits of its serving stack (never run by tests)."""
