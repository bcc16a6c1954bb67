"""Storage: the repo dir, blockstore, pins, garbage collection, files (chunking and reading)."""
