#!/usr/bin/env python3
"""A reference adapter for muttr-conformance, in Python with the standard library only.

It implements the ops that need no OpenPGP and no JSON-datagram parser -- node IDs (P-W3),
XOR distances and buckets (P-K1), closest-k (P-K1), values and keys (P-V1, P-V2) -- and answers
{"unsupported": true} to the others, whose cases are then not-applicable. It is the smallest
honest starting point for an implementation in another language:

    muttr-conformance vectors --impl 'python3 conformance/adapters/muttr_adapter.py'

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout, in order
(conformance/ADAPTER.md).
"""
import hashlib
import json
import sys


def node_id(req):
    # P-W3: SHA-1 of the address text as written, ":", the port.
    return hashlib.sha1(f"{req['address']}:{req['port']}".encode()).hexdigest()


def xor(a, b):
    return int(a, 16) ^ int(b, 16)


def distance(req):
    d = xor(req["a"], req["b"])
    # The bucket is the index of the highest bit that differs; none for distance 0.
    return {"distance": f"{d:040x}", "bucket": d.bit_length() - 1 if d else None}


def closest(req):
    ids = sorted(set(req["ids"]), key=lambda i: xor(i, req["target"]))
    return ids[: req["k"]]


def value_of(req):
    # P-V1: the value is the lowercase hex of the armored message's bytes.
    return req["armored"].encode().hex()


def key_of(req):
    # P-V2: the key is the SHA-1 of the value's hex text as transmitted.
    return hashlib.sha1(req["value"].encode()).hexdigest()


OPS = {"node_id": node_id, "distance": distance, "closest": closest,
       "value_of": value_of, "key_of": key_of}


def answer(req):
    op = req.get("op")
    if op == "hello":
        return {"ok": {"implementation": "muttr_adapter.py", "ops": ["hello", *OPS]}}
    if op in OPS:
        try:
            return {"ok": OPS[op](req)}
        except (KeyError, ValueError, TypeError) as e:
            return {"error": {"message": f"{type(e).__name__}: {e}"}}
    return {"unsupported": True}


for line in sys.stdin:
    print(json.dumps(answer(json.loads(line))), flush=True)
