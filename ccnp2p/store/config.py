"""Repo configuration: a small TOML file (``config.toml``) with typed, validated sections."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ccnp2p.errors import RepoError

DEFAULT_LISTEN = ["/ip4/0.0.0.0/tcp/4011"]
DEFAULT_API_PORT = 5011


@dataclass(slots=True)
class StorageConfig:
    max_bytes: int = 10 * 1024**3  # 10 GiB, like kubo's StorageMax; 0 = unlimited
    chunk_bytes: int = 256 * 1024
    durable: bool = True  # fsync every block before it becomes visible


@dataclass(slots=True)
class NetworkConfig:
    listen: list[str] = field(default_factory=lambda: list(DEFAULT_LISTEN))
    bootstrap: list[str] = field(default_factory=list)
    kad_protocol: str = "/ccn/kad/1.0.0"


@dataclass(slots=True)
class ApiConfig:
    port: int = DEFAULT_API_PORT  # always bound on 127.0.0.1; 0 picks a free port


@dataclass(slots=True)
class ComputeConfig:
    gpu: str = ""  # GPU kind to advertise ("" = none); the demo and tests declare simulated ones
    gpu_memory: int = 0  # bytes
    bandwidth: int = 0  # bytes/s advertised to schedulers (0 = unknown)
    price: int = 0  # settlement units per CPU-second
    executor_timeout_s: float = 10.0  # a silent executor is declared dead after this


@dataclass(slots=True)
class EconConfig:
    seeds: list[str] = field(default_factory=list)  # trusted peer ids (trust flows from them)
    value_per_mib: int = 0  # value of a receipt per MiB read through the API (0: no receipts)


@dataclass(slots=True)
class Config:
    storage: StorageConfig = field(default_factory=StorageConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    econ: EconConfig = field(default_factory=EconConfig)

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise RepoError(f"no config at {path}: run `ccnp2p init`") from None
        except tomllib.TOMLDecodeError as exc:
            raise RepoError(f"{path}: invalid TOML: {exc}") from exc
        cfg = cls()
        for section in fields(cls):
            target = getattr(cfg, section.name)
            values = raw.get(section.name, {})
            if not isinstance(values, dict):
                raise RepoError(f"{path}: [{section.name}] must be a table")
            for key, value in values.items():
                _set_checked(target, section.name, key, value)
        return cfg

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(dumps_toml(asdict(self)))
        tmp.replace(path)


def _set_checked(target: Any, section: str, key: str, value: Any) -> None:
    known = {f.name for f in fields(target)}
    if key not in known:
        raise RepoError(f"config: unknown key {section}.{key}")
    current = getattr(target, key)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, bool) != isinstance(value, bool) or not isinstance(value, type(current)):
        raise RepoError(f"config: {section}.{key} must be {type(current).__name__}")
    if isinstance(current, list) and not all(isinstance(v, str) for v in value):
        raise RepoError(f"config: {section}.{key} must be a list of strings")
    setattr(target, key, value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dumps_toml(data: dict[str, dict[str, Any]]) -> str:
    """Write two-level config data as TOML (sections of scalars and lists of strings)."""
    out = []
    for section, values in data.items():
        out.append(f"[{section}]")
        out.extend(f"{k} = {_toml_value(v)}" for k, v in values.items())
        out.append("")
    return "\n".join(out)
