"""The daemon's local HTTP API and read gateway (Starlette app served by Hypercorn on trio)."""
