#!/usr/bin/env python3
"""Threshold-crossing -> action latency probe for benches/agent_budget.sh.

Usage: latency_probe.py FIRED_FILE DATAGRAMS SIZE [TIMEOUT_S [COMM]]
Forks an owner process (comm COMM, default "gw-flooded") holding a UDP socket on 127.0.0.1 with
SO_RCVBUFFORCE 256 MiB that it never reads, floods it with DATAGRAMS x SIZE bytes, takes the
wall-clock time when the last datagram was sent, and waits until FIRED_FILE appears (the agent's
exec rule touches it). Prints "latency_ms X rx_bytes Y" (X = file mtime - flood end) and exits
0, or prints "timeout" and exits 1. The owner is killed and reaped before exiting.
"""

import ctypes
import os
import signal
import socket
import sys
import time

SO_RCVBUFFORCE = 33
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15


def main():
    fired, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0
    comm = sys.argv[5].encode() if len(sys.argv) > 5 else b"gw-flooded"
    libc = ctypes.CDLL(None, use_errno=True)
    rd, wr = os.pipe()
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rd)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            libc.prctl(PR_SET_NAME, ctypes.c_char_p(comm), 0, 0, 0)
            if os.getppid() != me:
                os._exit(1)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 256 << 20)
            s.bind(("127.0.0.1", 0))
            os.write(wr, b"%d\n" % s.getsockname()[1])
            os.close(wr)
            while True:
                signal.pause()
        finally:
            os._exit(1)
    os.close(wr)
    with os.fdopen(rd) as f:
        port = int(f.readline())
    try:
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        payload = b"\xa5" * size
        for _ in range(count):
            tx.sendto(payload, ("127.0.0.1", port))
        flood_end_ns = time.time_ns()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                st = os.stat(fired)
            except FileNotFoundError:
                time.sleep(0.001)
                continue
            print("latency_ms %.1f rx_bytes %d" % ((st.st_mtime_ns - flood_end_ns) / 1e6, count * size))
            return 0
        print("timeout")
        return 1
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    sys.exit(main())
