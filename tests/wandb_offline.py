"""Reads a W&B offline run file (`run-<id>.wandb`) without network, for tests.

wandb 0.31 has no public reader; the file is a LevelDB-style log: a 7-byte header (":W&B",
magic 0xBEE1, version 0), then 32 KiB blocks of records, each with a 7-byte header (crc32,
length, type FULL/FIRST/MIDDLE/LAST) and a protobuf `Record` split across chunks."""

from __future__ import annotations

import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

_BLOCK = 32 * 1024
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def records(path: Path) -> list[pb.Record]:
    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B" and magic == 0xBEE1, f"{path}: not a W&B log"
    out, pos, pending = [], 7, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:  # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        if kind == _FULL:
            pending = chunk
        elif kind == _FIRST:
            pending = chunk
            continue
        elif kind == _MIDDLE:
            pending += chunk
            continue
        elif kind == _LAST:
            pending += chunk
        rec = pb.Record()
        rec.ParseFromString(pending)
        out.append(rec)
        pending = b""
    return out


def run_info(path: Path) -> dict:
    """name, group, tags, job_type, and the set of history keys of one offline run file."""
    info: dict = {"keys": set()}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            info.update(name=rec.run.display_name, group=rec.run.run_group,
                        tags=list(rec.run.tags), job_type=rec.run.job_type)
        elif kind == "artifact":
            info.setdefault("artifacts", []).append((rec.artifact.type, rec.artifact.name))
        elif kind == "files":
            info.setdefault("files", []).extend(f.path for f in rec.files.files)
        elif kind == "history":
            info["keys"].update(i.key or "/".join(i.nested_key) for i in rec.history.item)
    return info
