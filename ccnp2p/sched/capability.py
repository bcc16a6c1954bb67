"""This node's capability record: what it runs and on what, signed and published in the DHT.

Hardware facts come from the OS, except the GPU, which is declared in the config (``[compute]
gpu``, ``gpu_memory``): the simulator and the demo use that to advertise a (simulated) GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import Identity
from ccnp2p.objects.records import CapabilityRecord


@dataclass(frozen=True, slots=True)
class Hardware:
    cpu: int
    memory: int
    gpu: str = ""
    gpu_memory: int = 0
    bandwidth: int = 0  # bytes/s, measured or configured
    price: int = 0

    @classmethod
    def detect(
        cls, *, gpu: str = "", gpu_memory: int = 0, bandwidth: int = 0, price: int = 0
    ) -> Hardware:
        cpu = os.cpu_count() or 1
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            memory = 0
        return cls(cpu, memory, gpu, gpu_memory, bandwidth, price)


def capability_record(
    identity: Identity,
    ops: list[Cid],
    hw: Hardware,
    *,
    load: int,
    addrs: list[str],
    seq: int,
) -> CapabilityRecord:
    rec = CapabilityRecord(
        peer=identity.public.to_protobuf(),
        ops=tuple(sorted(ops, key=bytes)),
        hardware={"cpu": hw.cpu, "memory": hw.memory, "gpu_memory": hw.gpu_memory},
        gpu=hw.gpu,
        bandwidth=hw.bandwidth,
        load=min(max(load, 0), 1000),
        price=hw.price,
        addrs=tuple(addrs[:16]),
        seq=seq,
    )
    return rec.signed_by(identity)
