#!/usr/bin/env python3
"""A churning population for benches/soak.sh: processes and sockets born and dying.

Run inside a network namespace (loopback only). Forever, until SIGTERM: keeps about TARGET
child processes alive; each child opens 1-4 UDP sockets (one of them flooded with a few
datagrams it never reads, so it has a receive queue and an owner to resolve), sometimes a TCP
listener with a connected pair, lives 0.1-2 s and exits. One child in ten queues enough to
cross a 128 KiB warn level (the queue is capped by the default 208 KiB rcvbuf), so owner
walks come and go. Prints "ready" once, then a summary
line "born N" on SIGTERM.

Usage: churn.py [TARGET]   (default 30)
"""
import os
import random
import signal
import socket
import sys
import time

TARGET = int(sys.argv[1]) if len(sys.argv) > 1 else 30
born = 0
kids = set()
stop = False


def on_term(*_):
    global stop
    stop = True


def child():
    socks = []
    for _ in range(random.randint(1, 4)):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    # One unread queue: a few datagrams to our own first socket; one child in ten queues
    # ~160 KB of payload (several hundred KB of truesize), past the soak's warn level.
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    n = 40 if random.random() < 0.1 else random.randint(1, 20)
    for _ in range(n):
        try:
            tx.sendto(b"x" * (4000 if n == 40 else random.randint(100, 4000)), socks[0].getsockname())
        except OSError:
            break
    if random.random() < 0.3:
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(4)
        c = socket.create_connection(lst.getsockname())
        a, _ = lst.accept()
        c.send(b"y" * 1000)  # unread on a
        socks += [lst, c, a]
    time.sleep(random.uniform(0.1, 2.0))
    os._exit(0)


def main():
    global born
    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    while not stop:
        while len(kids) < TARGET and not stop:
            pid = os.fork()
            if pid == 0:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                child()
            kids.add(pid)
            born += 1
        try:
            pid, _ = os.waitpid(-1, 0)
            kids.discard(pid)
        except InterruptedError:
            pass
        except ChildProcessError:
            kids.clear()
    for pid in kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in list(kids):
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    print(f"born {born}", flush=True)


if __name__ == "__main__":
    main()
