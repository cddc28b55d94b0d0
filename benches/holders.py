#!/usr/bin/env python3
"""Socket holders for the benches: PROCS processes with SOCKS sockets each, on loopback.

Usage: holders.py PROCS SOCKS
Each child opens SOCKS sockets (about 60% UDP v4/v6, 20% TCP listeners, 20% connected TCP
pairs), then sleeps. One fork()ed parent keeps memory small (children share its pages).
Prints "ready N" (N = sockets opened) on stdout once every child holds its sockets, then
waits; on SIGTERM/SIGINT it kills and reaps its children. Every child has
PR_SET_PDEATHSIG=SIGKILL, so killing the parent (even with SIGKILL) takes them along.
"""

import ctypes
import os
import signal
import socket
import sys

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15


def prctl(opt, arg):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(opt, arg, 0, 0, 0)


def child(n, report_fd, parent):
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(PR_SET_NAME, ctypes.c_char_p(b"gw-benchhold"))
    if os.getppid() != parent:
        os._exit(1)
    keep = []
    while len(keep) < n:
        k = len(keep) % 10
        if k < 3:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            keep.append(s)
        elif k < 6:
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.bind(("::1", 0))
            keep.append(s)
        elif k < 8:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            s.listen(4)
            keep.append(s)
        else:
            # A connected pair: client + accepted end (two sockets).
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.bind(("127.0.0.1", 0))
            ls.listen(1)
            c = socket.create_connection(ls.getsockname())
            a, _ = ls.accept()
            ls.close()
            keep += [c, a]
    os.write(report_fd, b"%d\n" % len(keep))
    os.close(report_fd)
    while True:
        signal.pause()


def main():
    procs, socks = int(sys.argv[1]), int(sys.argv[2])
    rd, wr = os.pipe()
    me = os.getpid()
    kids = []
    for _ in range(procs):
        pid = os.fork()
        if pid == 0:
            os.close(rd)
            try:
                child(socks, wr, me)
            finally:
                os._exit(1)
        kids.append(pid)
    os.close(wr)
    total = 0
    with os.fdopen(rd) as f:
        for _ in range(procs):
            line = f.readline()
            if not line:
                break
            total += int(line)

    def stop(*_):
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for k in kids:
            try:
                os.waitpid(k, 0)
            except ChildProcessError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready %d" % total, flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
