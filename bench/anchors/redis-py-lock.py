#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Anchor: a redis-py script that holds redis.lock.Lock around a command.
#   redis-py-lock.py PORT KEY [--blocking] CMD [ARG...]
# Without --blocking it tries once (exit 75 when busy); with it, it waits the way redis-py
# does: polling SET NX every `sleep` seconds (0.1 by default).
import subprocess
import sys

import redis


def main() -> int:
    port, key, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    blocking = bool(args) and args[0] == "--blocking"
    if blocking:
        args = args[1:]
    client = redis.Redis(host="127.0.0.1", port=port)
    lock = client.lock(key, timeout=30)
    if not lock.acquire(blocking=blocking):
        return 75
    try:
        return subprocess.call(args)
    finally:
        lock.release()


sys.exit(main())
