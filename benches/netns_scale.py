#!/usr/bin/env python3
"""What unprivileged network namespaces cost the agent, and how fast it still finds a flood.

For each count N (default 0, 300, 1000): N processes running as `nobody`, each in namespaces
of its own made as `unshare -Urn` makes them (CLONE_NEWUSER|CLONE_NEWNET, uid 0 mapped to
nobody, lo up; forked from one parent rather than N interpreters, so 1 000 of them take
~1 GB, not 10), each holding one UDP socket on 127.0.0.1:5300 it never reads. Then
`ghostwatch run` (interval INTERVAL_MS, audit lines on stderr, status file in a temp dir) for
SETTLE_S seconds: CPU per poll from /proc/PID/stat utime+stime over the polls the status file
counts, and the status file's namespace figures. Then two floods, each 8 MB of datagrams
into a UDP socket of ours with a 64 MiB receive buffer (backlog_warn_bytes 96 KiB):
  root   made in the root namespace,
  last   made in the last-created namespace (by a thread setns()ed there);
each timed from the end of the flood to the agent's `event=threshold trigger=backlog` line
(the flooded socket is then read empty and the agent left to recover first). A flood not
found within FIND_TIMEOUT_S is reported as "not found".

Needs root, python3, a built binary (default
target/release/ghostwatch). Cleans up: every child is killed and reaped, temp dir removed.

Usage: benches/netns_scale.py [COUNTS [BIN]]   e.g.  benches/netns_scale.py "0 300 1000"
Env: INTERVAL_MS (500), SETTLE_S (20), FIND_TIMEOUT_S (45)
"""
import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

COUNTS = [int(x) for x in (sys.argv[1] if len(sys.argv) > 1 else "0 300 1000").split()]
BIN = sys.argv[2] if len(sys.argv) > 2 else "target/release/ghostwatch"
INTERVAL_MS = int(os.environ.get("INTERVAL_MS", "500"))
SETTLE_S = float(os.environ.get("SETTLE_S", "20"))
FIND_TIMEOUT_S = float(os.environ.get("FIND_TIMEOUT_S", "45"))
PORT = 5300
WARN = 96 * 1024
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
TICK = os.sysconf("SC_CLK_TCK")


def lo_up():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    import fcntl
    ifr = struct.pack("16sH14s", b"lo", 0, b"")
    flags = struct.unpack("16sH14s", fcntl.ioctl(s, 0x8913, ifr))[1]  # SIOCGIFFLAGS
    fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 1, b""))  # SIOCSIFFLAGS
    s.close()


def holder(ready_w):
    """One child: unshare -Urn as nobody, lo up, one UDP socket, wait forever."""
    uid = os.getuid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        os._exit(3)
    try:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"0 {os.getgid()} 1")
        lo_up()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", PORT))
    except OSError:
        os._exit(4)
    os.write(ready_w, b"r")
    while True:
        signal.pause()


def spawn(n):
    """Forks a parent (as nobody) that forks n holders; returns (parent pid, holder pids)."""
    if n == 0:
        return None, []
    nobody = pwd.getpwnam("nobody")
    pids_r, pids_w = os.pipe()
    parent = os.fork()
    if parent == 0:
        os.close(pids_r)
        os.setsid()
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
        # setuid() from root cleared "dumpable", which leaves /proc/self root's: uid_map
        # could not be written (unshare -Urn run as nobody never loses it).
        libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
        kids = []
        for _ in range(n):
            r, w = os.pipe()
            k = os.fork()
            if k == 0:
                os.close(r)
                holder(w)
            os.close(w)
            ok = os.read(r, 1) == b"r"
            os.close(r)
            kids.append(k if ok else -k)
        os.write(pids_w, (" ".join(map(str, kids)) + "\n").encode())
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        while True:
            signal.pause()
    os.close(pids_w)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(pids_r, 65536)
        if not chunk:
            break
        buf += chunk
    os.close(pids_r)
    kids = [int(x) for x in buf.split()]
    bad = [k for k in kids if k < 0]
    if bad:
        raise SystemExit(f"{len(bad)} holders failed to set up")
    return parent, kids


def cleanup(parent):
    if parent is None:
        return
    try:
        os.killpg(parent, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(parent, 0)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def status(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def flood(ns_pid=None):
    """A receiver of our own (SO_RCVBUFFORCE 64 MiB) flooded with 8 MB of 4 000-byte datagrams
    on 127.0.0.1, made inside ns_pid's namespace (a thread setns()es there) or in ours.
    Returned open: the caller closes it. (Small floods, under the per-CPU reserve of the
    protocol's memory counter, do not move sockstat and wait for the periodic full scan,
    namespaces or not; this one does not.)"""
    out = []

    def send():
        if ns_pid is not None:
            fd = os.open(f"/proc/{ns_pid}/ns/net", os.O_RDONLY)
            assert libc.setns(fd, CLONE_NEWNET) == 0, ctypes.get_errno()
            os.close(fd)
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
        r.bind(("127.0.0.1", 0))
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(2000):
            s.sendto(b"\x5a" * 4000, r.getsockname())
        s.close()
        out.append(r)
    t = threading.Thread(target=send)
    t.start()
    t.join()
    return out[0]


def wait_line(err_path, start_off, needle, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        with open(err_path, "rb") as f:
            f.seek(start_off)
            for line in f.read().decode(errors="replace").splitlines():
                if all(n in line for n in needle):
                    return time.monotonic() - t0, line
        time.sleep(0.01)
    return None, None


def run_one(n):
    parent, kids = spawn(n)
    d = tempfile.mkdtemp(prefix="gw-netns-")
    agent = None
    try:
        cfg = os.path.join(d, "gw.json")
        st = os.path.join(d, "status.json")
        with open(cfg, "w") as f:
            json.dump({"interval_ms": INTERVAL_MS, "syslog": "stderr", "status_file": st,
                       "backlog_warn_bytes": WARN, "backlog_act_bytes": 4 * WARN,
                       "ghost_warn_kb": 1 << 29, "ghost_act_kb": 1 << 30, "mlock": False,
                       "oom_score_adj": 0, "rules": []}, f)
        os.chmod(cfg, 0o644)
        err = os.path.join(d, "agent.stderr")
        ef = open(err, "wb")
        agent = subprocess.Popen([BIN, "run", "-c", cfg], stdout=subprocess.DEVNULL, stderr=ef)
        time.sleep(2)  # startup, first full scan
        s0, c0 = status(st), cpu_ticks(agent.pid)
        time.sleep(SETTLE_S)
        s1, c1 = status(st), cpu_ticks(agent.pid)
        polls = s1["cycles"] - s0["cycles"]
        cpu_ms = (c1 - c0) * 1000.0 / TICK / max(polls, 1)
        ns_fig = {k: v for k, v in s1.items() if k.startswith("netns")}
        res = {"namespaces": n, "polls": polls, "cpu_ms_per_poll": round(cpu_ms, 2),
               "max_cycle_us": s1.get("max_cycle_us"), "status_netns": ns_fig}
        # Flood in the root namespace.
        off = os.path.getsize(err)
        rs = flood()
        t, _ = wait_line(err, off, ["event=threshold", "trigger=backlog"], FIND_TIMEOUT_S)
        res["find_root_s"] = None if t is None else round(t, 2)
        off = os.path.getsize(err)
        rs.close()
        wait_line(err, off, ["event=recovered", "trigger=backlog"], FIND_TIMEOUT_S)
        # Flood in the last-created namespace.
        if kids:
            off = os.path.getsize(err)
            ls = flood(kids[-1])
            t, _ = wait_line(err, off, ["event=threshold", "trigger=backlog"], FIND_TIMEOUT_S)
            res["find_last_s"] = None if t is None else round(t, 2)
            ls.close()
        audit = [l for l in open(err, errors="replace").read().splitlines()
                 if "netns" in l and "event=" in l]
        res["netns_audit_lines"] = len(audit)
        if audit:
            res["netns_audit_first"] = audit[0][:200]
        return res
    finally:
        if agent is not None:
            agent.terminate()
            try:
                agent.wait(5)
            except Exception:
                agent.kill()
                agent.wait()
        cleanup(parent)
        shutil.rmtree(d, ignore_errors=True)


def main():
    if os.geteuid() != 0:
        raise SystemExit("needs root")
    print(f"# ghostwatch {BIN}, interval {INTERVAL_MS} ms, settle {SETTLE_S} s")
    print("namespaces  polls  cpu_ms/poll  max_cycle_ms  find_root_s  find_last_s  netns_audit  status")
    for n in COUNTS:
        r = run_one(n)
        fl = r.get("find_last_s", "-")
        print(f"{n:>10}  {r['polls']:>5}  {r['cpu_ms_per_poll']:>11}  "
              f"{(r['max_cycle_us'] or 0) / 1000:>12.1f}  "
              f"{r['find_root_s'] if r['find_root_s'] is not None else 'not found':>11}  "
              f"{fl if fl is not None else 'not found':>11}  {r['netns_audit_lines']:>11}  "
              f"{json.dumps(r['status_netns'])}", flush=True)
        if "netns_audit_first" in r:
            print(f"#   {r['netns_audit_first']}")


if __name__ == "__main__":
    main()
