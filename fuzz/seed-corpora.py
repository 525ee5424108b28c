#!/usr/bin/env python3
"""Builds the fuzz targets' seed corpora from vectors/ (run from the repository root).

datagram    <- vectors/wire.json inputs (valid and invalid datagrams)
value       <- armored messages of vectors/pgp/messages (raw bytes; the target hexes them too)
auth        <- auth texts of vectors/pgp/vectors.json
pod_request <- one request per route, with real keys and texts from vectors/pgp
"""
import hashlib, json, os, pathlib

root = pathlib.Path(__file__).resolve().parent.parent
out = root / "fuzz" / "corpus"

def put(target, data):
    if len(data) > 8192:
        return  # libFuzzer's default max_len is 4096; the oversize cases live in vectors/
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)

for case in json.load(open(root / "vectors" / "wire.json"))["cases"]:
    if "input_hex" in case:
        put("datagram", bytes.fromhex(case["input_hex"]))
    else:
        inp = case["input"]
        put("datagram", inp if isinstance(inp, str) else json.dumps(inp))

pgp = root / "vectors" / "pgp"
for f in sorted((pgp / "messages").iterdir()):
    put("value", f.read_bytes())

vec = json.load(open(pgp / "vectors.json"))
for case in vec["auth"]:
    put("auth", case["text"])

alice_pub = (pgp / "keys" / "alice.pub.asc").read_text()
good_auth = next(c for c in vec["auth"] if c["verdict"] == "ok")
auth_text = good_auth["text"]
message_hex = (pgp / "messages" / "good.asc").read_bytes().hex()
# byte 0: method (0 GET, 1 POST, 2 DELETE), byte 1: media type (1 text/plain)
requests = [
    (1, 1, "/", alice_pub),
    (0, 0, "/aliases/alice", ""),
    (1, 1, "/aliases", auth_text),
    (1, 1, "/tokens", auth_text),
    (1, 1, "/inboxes/alice", auth_text),
    (0, 0, "/inboxes?token=00", ""),
    (2, 0, "/inboxes?token=00", ""),
    (1, 1, "/messages", message_hex),
    (0, 0, "/messages/" + "0" * 40, ""),
    (0, 0, "/openapi.json", ""),
    (3, 3, "/nothing", "{}"),
]
for m, t, path, body in requests:
    put("pod_request", bytes([m, t]) + path.encode() + b"\n" + body.encode())
for t in sorted(os.listdir(out)):
    print(t, len(os.listdir(out / t)), "files")
