"""The Network seam: everything protocol code needs from the transport, and nothing more.

Protocol modules (dht, transfer, compute, sched, econ) talk only to
:class:`~ccnp2p.net.base.Network`
and :class:`~ccnp2p.net.base.Stream`. ``net/libp2p.py`` implements them over py-libp2p (the only
module that imports it); ``net/memory.py`` implements them over simulated links under virtual time.
"""
