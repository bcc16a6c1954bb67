"""The ``ccnp2p`` command line."""
