"""Evidence ingest: ``EvidenceStore.put`` of a 200 MiB stream against hashing the same bytes in hashlib.

Anchors, measured in the same run on the same machine:
  * evidence_put_vs_raw_hash_ratio = put throughput / (SHA-256 + SM3 in one thread) throughput; target ≥ 0.5.
    The put includes sniffing, spooling, both digests, the upload to SeaweedFS (on this machine, sharing
    its cores) and the database transaction.
  * peak_rss_growth_mb = the highest resident set size sampled during the put, less the size before; < 64.

Starts its own SeaweedFS. The database is a scratch one (created, migrated, dropped) on the server at
SUNSHINE_TEST_DATABASE_URL or SUNSHINE_DATABASE_URL; with neither set, an embedded PostgreSQL is started.
MB here means MiB (2**20 bytes). Always exits 0; each target line says whether it was met.
"""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch import scratch_database
from domain.evidence.models import CollectionMethod
from infra.components.process import free_port, running
from infra.components.seaweedfs import seaweedfs_spec
from infra.db import make_engine
from infra.evidence_store import EvidenceStore

MB = 1 << 20
STREAM_BYTES = 200 * MB
CHUNK_BYTES = 1 * MB
RATIO_TARGET = 0.5
RSS_TARGET_MB = 64.0
ROUNDS = 2  # best of: the machine is shared, and one slow round says little
MP4_FTYP = (24).to_bytes(4, "big") + b"ftypisom" + b"\x00\x00\x02\x00" + b"isomiso2"


def video_stream(seed: int) -> Iterator[bytes]:
    """200 MiB of pseudo-random chunks that start like an MP4; cheap to make, so hashing dominates.

    Each chunk is a different window of a random pool, stamped with its index: no two chunks are equal.
    """
    pool = random.Random(seed).randbytes(8 * MB)
    for index in range(STREAM_BYTES // CHUNK_BYTES):
        start = (index * 786_433) % (len(pool) - CHUNK_BYTES)
        stamp = index.to_bytes(8, "big") + seed.to_bytes(8, "big")
        chunk = stamp + pool[start + len(stamp) : start + CHUNK_BYTES]
        yield MP4_FTYP + chunk[len(MP4_FTYP) :] if index == 0 else chunk


def raw_hash_seconds(seed: int) -> tuple[float, float]:
    """Wall and CPU seconds of SHA-256 and SM3 over the stream, one after the other in one thread."""
    started, cpu_started = time.perf_counter(), process_cpu_seconds()
    sha256, sm3 = hashlib.sha256(), hashlib.new("sm3")
    for chunk in video_stream(seed):
        sha256.update(chunk)
        sm3.update(chunk)
    return time.perf_counter() - started, process_cpu_seconds() - cpu_started


def process_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class PeakRss:
    """Samples this process's resident set size in a thread while the block runs."""

    def __init__(self, interval: float = 0.005) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.baseline = self.peak = self._process.memory_info().rss

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / MB


def measure(store: EvidenceStore, weed_cpu_seconds: Callable[[], float]) -> None:
    # Warm up: imports, connection pools, the bucket, hashlib's SM3 provider.
    store.put(MP4_FTYP + os.urandom(MB), collection_method=CollectionMethod.upload, actor="system:bench")
    raw_seconds, raw_cpu = min(raw_hash_seconds(seed=1) for _ in range(ROUNDS))
    put_seconds = float("inf")
    rss_growth_mb = 0.0
    weed_cpu = put_cpu = 0.0
    for round_index in range(ROUNDS):
        cpu_before, own_cpu_before = weed_cpu_seconds(), process_cpu_seconds()
        with PeakRss() as rss:
            started = time.perf_counter()
            ref = store.put(
                video_stream(seed=100 + round_index),
                collection_method=CollectionMethod.platform_extraction,
                actor="system:bench",
            )
            elapsed = time.perf_counter() - started
        assert ref.size == STREAM_BYTES
        if elapsed < put_seconds:
            put_seconds = elapsed
            weed_cpu, put_cpu = weed_cpu_seconds() - cpu_before, process_cpu_seconds() - own_cpu_before
        rss_growth_mb = max(rss_growth_mb, rss.growth_mb)

    put_rate = STREAM_BYTES / MB / put_seconds
    raw_rate = STREAM_BYTES / MB / raw_seconds
    ratio = put_rate / raw_rate
    print(f"evidence_put_vs_raw_hash_ratio: {ratio:.2f} (put {put_rate:.1f} MB/s, raw hash {raw_rate:.1f} MB/s)")
    print(f"peak_rss_growth_mb: {rss_growth_mb:.1f}")
    print(f"put_in_process_cpu_vs_raw_hash: {raw_cpu / put_cpu:.2f} (CPU of hashing alone / CPU of the whole put here)")
    print(
        f"cpu_seconds: put {put_cpu:.2f} in this process + {weed_cpu:.2f} in SeaweedFS "
        f"(on the same {os.cpu_count()} cores), raw hash {raw_cpu:.2f}"
    )
    print(f"target evidence_put_vs_raw_hash_ratio >= {RATIO_TARGET}: {'met' if ratio >= RATIO_TARGET else 'MISSED'}")
    print(f"target peak_rss_growth_mb < {RSS_TARGET_MB:.0f}: {'met' if rss_growth_mb < RSS_TARGET_MB else 'MISSED'}")


def main() -> int:
    print(f"cpus: {os.cpu_count()}, stream: {STREAM_BYTES // MB} MB in {CHUNK_BYTES // MB} MB chunks, best of {ROUNDS}")
    with (
        tempfile.TemporaryDirectory(prefix="sunshine-bench-s3-") as s3_base,
        scratch_database() as (database_url, _postgres_pid),
    ):
        access_key, secret_key = f"bench{secrets.token_hex(6)}", secrets.token_urlsafe(30)
        port = free_port()
        spec = seaweedfs_spec(
            data_dir=Path(s3_base) / "data",
            port=port,
            access_key=access_key,
            secret_key=secret_key,
            log_path=Path(s3_base) / "seaweedfs.log",
        )
        engine: Engine = make_engine(database_url)
        try:
            with running(spec) as seaweed:
                from minio import Minio

                client = Minio(f"127.0.0.1:{port}", access_key, secret_key, region="us-east-1", secure=False)
                store = EvidenceStore(
                    client,
                    engine,
                    bucket="bench-evidence",
                    retention_days=1,
                    max_bytes=STREAM_BYTES + MB,
                    presign_seconds=60,
                    spool_dir=Path(s3_base) / "spool",
                )
                store.ensure_bucket()
                weed = psutil.Process(seaweed.pid)

                def weed_cpu_seconds() -> float:
                    times = weed.cpu_times()
                    return float(times.user + times.system)

                measure(store, weed_cpu_seconds)
        finally:
            engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
