#!/usr/bin/env python3
"""Writes a copy of a GGUF file whose F32 tensors are all NaN: its header is intact, so the model probe accepts
it and the host loads it, but every step produces non-finite logits, so its requests fail and the host marks the
model failed (the cluster e2e's "second model fails" case).

usage: nan-gguf.py IN.gguf OUT.gguf
"""
import math
import shutil
import struct
import sys

SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
F32 = 0


def read(f, fmt):
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated GGUF header")
    return struct.unpack(fmt, data)[0]


def read_string(f):
    return f.read(read(f, "<Q")).decode("utf-8")


def read_value(f, vtype):
    if vtype == 8:
        return read_string(f)
    if vtype == 9:
        item_type, count = read(f, "<I"), read(f, "<Q")
        return [read_value(f, item_type) for _ in range(count)]
    if vtype not in SCALARS:
        raise ValueError(f"unknown GGUF value type {vtype}")
    return read(f, SCALARS[vtype])


def main(src, dst):
    with open(src, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{src} is not a GGUF file")
        read(f, "<I")  # version
        n_tensors, n_kv = read(f, "<Q"), read(f, "<Q")
        alignment = 32
        for _ in range(n_kv):
            key = read_string(f)
            value = read_value(f, read(f, "<I"))
            if key == "general.alignment":
                alignment = value
        tensors = []
        for _ in range(n_tensors):
            name = read_string(f)
            dims = [read(f, "<Q") for _ in range(read(f, "<I"))]
            ttype, offset = read(f, "<I"), read(f, "<Q")
            tensors.append((name, dims, ttype, offset))
        data_start = (f.tell() + alignment - 1) // alignment * alignment
    shutil.copyfile(src, dst)
    nan = struct.pack("<f", math.nan)
    poisoned = 0
    with open(dst, "r+b") as out:
        for name, dims, ttype, offset in tensors:
            if ttype != F32:
                continue
            out.seek(data_start + offset)
            out.write(nan * math.prod(dims))
            poisoned += 1
    if poisoned == 0:
        raise ValueError(f"{src} has no F32 tensor to poison")
    print(f"nan-gguf: {poisoned} F32 tensors of {src} set to NaN in {dst}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip())
    try:
        main(sys.argv[1], sys.argv[2])
    except (OSError, ValueError) as e:
        sys.exit(f"nan-gguf: {e}")
