#!/usr/bin/env python3
"""Fd hogs for benches/owner_walk.sh: PROCS processes holding FDS open sockets each.

Usage: fd_hog.py PROCS FDS
Each child (comm "gw-fdhog") raises its soft RLIMIT_NOFILE to FDS + 16 (and the hard limit if
that is below: root with CAP_SYS_RESOURCE may, up to fs.nr_open), opens FDS unbound UDP sockets (every fd is a `socket:[N]` link, the
walk's costliest case; unbound, so no /proc/net table and no port grows), then sleeps. Prints
"ready N" (N = fds opened in all) once every child holds its fds, then waits; on SIGTERM/SIGINT
it kills and reaps its children. Every child has PR_SET_PDEATHSIG=SIGKILL, so killing the
parent (even with SIGKILL) takes them along.
"""

import ctypes
import os
import resource
import signal
import socket
import sys

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15


def child(n, report_fd, parent):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(b"gw-fdhog"), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)
    want = n + 16
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
        # Raw fds, not socket objects: 200 000 Python objects would only cost memory.
        keep = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM).detach() for _ in range(n)]
    except (OSError, ValueError) as e:
        sys.stderr.write("fd_hog.py: %d fds in one process (RLIMIT_NOFILE %d/%d): %s\n"
                         % (n, soft, hard, e))
        os._exit(1)
    os.write(report_fd, b"%d\n" % len(keep))
    os.close(report_fd)
    while True:
        signal.pause()


def main():
    procs, fds = int(sys.argv[1]), int(sys.argv[2])
    rd, wr = os.pipe()
    me = os.getpid()
    kids = []
    for _ in range(procs):
        pid = os.fork()
        if pid == 0:
            os.close(rd)
            try:
                child(fds, wr, me)
            finally:
                os._exit(1)
        kids.append(pid)
    os.close(wr)

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
    total = 0
    with os.fdopen(rd) as f:
        for _ in range(procs):
            line = f.readline()
            if not line:
                break
            total += int(line)
    if total != procs * fds:
        print("short %d" % total, flush=True)
        stop()
    print("ready %d" % total, flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
