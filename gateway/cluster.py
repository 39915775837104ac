"""Everything a request handler needs about the cluster, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from erasure import Codec
from gateway.volume_client import VolumeClient
from placement import Ring, RingNode
from shardgate.config import ClusterConfig


@dataclass
class Cluster:
    config: ClusterConfig
    ring: Ring
    codec: Codec
    volumes: VolumeClient

    @classmethod
    def build(cls, config: ClusterConfig, volumes: VolumeClient | None = None) -> Cluster:
        ring = Ring([RingNode(v.id, v.weight, v.zone) for v in config.volumes])
        ec = config.erasure
        codec = Codec(ec.k, ec.m, ec.ec_type, ec.segment_size)
        return cls(config, ring, codec, volumes or VolumeClient(config))

    @property
    def width(self) -> int:
        return self.config.erasure.k + self.config.erasure.m

    @property
    def write_quorum(self) -> int:
        return self.config.erasure.write_quorum

    def placement(self, incarnation: str, key: str) -> tuple[str, ...]:
        return self.ring.placement(f"{incarnation}/{key}", self.width)

    @property
    def volume_ids(self) -> list[str]:
        return [v.id for v in self.config.volumes]

    @property
    def majority(self) -> int:
        return len(self.config.volumes) // 2 + 1
