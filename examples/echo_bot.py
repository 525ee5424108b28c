#!/usr/bin/env python3
"""A Muttr echo bot on muttrd's socket API (node/DAEMON.md): answers every verified message
with "echo: TEXT". Usage: echo_bot.py SOCKET [COUNT] -- stops after COUNT replies if given."""
import json
import socket
import sys

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
lines = sock.makefile("r", encoding="utf-8")
next_id = 0


def request(op, **fields):
    global next_id
    next_id += 1
    sock.sendall((json.dumps({"id": next_id, "op": op, **fields}) + "\n").encode())


request("subscribe")
replied = 0
for line in lines:
    msg = json.loads(line)
    if "event" not in msg:
        if not msg["ok"]:
            print("error:", msg["error"], file=sys.stderr)
        elif msg["id"] == 1:
            print("subscribed", flush=True)
        continue
    if msg["event"] == "message" and msg.get("verified"):
        request("send", to=msg["from"], text="echo: " + msg["text"])
        replied += 1
        print(f"echoed {msg['text']!r} to {msg['from']}", flush=True)
        if limit is not None and replied >= limit:
            break
