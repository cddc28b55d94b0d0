#!/usr/bin/env python3
"""oom_eta against fixed thresholds, on a real kernel, without ever exhausting the box.

Usage: oom_eta.py BIN [RATES_MIB_S [BENIGN_S]]   (default "64,16" and 180; run by benches/oom_eta.sh)

The floor is set relative to this box: min_available_kb = MemAvailable now - 1.5 GiB, so the
"exhaustion" is a bounded 1.5 GiB of a 24 GiB machine. Each flood run starts the agent (BIN,
syslog on stderr, 1 s polls, the default 30 s eta_window_s) with three log rules on the same
flood, each acting once (cooldown 1 h):
    oom_eta   eta_s 60    (act while MemAvailable is estimated to reach the floor within 60 s)
    available             (act below the floor)
    backlog               (the default backlog_act_bytes, 16 MiB)
lets it watch a quiet box for WARM_S (a full window of history), then floods one unread UDP
socket on 127.0.0.1 (a child holding it with SO_RCVBUFFORCE 1 GiB: the kernel caps its queue at
2 GiB whatever happens) with 60 000-byte datagrams paced at RATE MiB/s, and prints the seconds
from flood start to each trigger's first event=action line. The flood stops once all three
acted, when MemAvailable is 256 MiB below the floor, or after 180 s; then the socket is closed
(freeing the queue) and the agent is watched until the oom_eta incident recovers.

The benign run (BENIGN_S seconds, the oom_eta rule alone, same floor) reads a 4 GiB file through
the page cache again and again (its pages dropped with POSIX_FADV_DONTNEED before each pass)
while a child allocates 200 MB, touches every page, holds it 2 s and frees it, every 5 s.
It prints the oom_eta lines seen: act-level thresholds and actions are false triggers (must be
0); warn lines are counted apart.

Needs root (SO_RCVBUFFORCE, the agent's config trust rules). Leaves nothing behind.
"""

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SO_RCVBUFFORCE = 33
MIB = 1 << 20
HEADROOM_KB = 1536 * 1024  # the floor sits 1.5 GiB below MemAvailable at start
SAFETY_KB = 256 * 1024  # the flood stops this far below the floor, whatever the agent did
WARM_S = 35
FLOOD_MAX_S = 180
DGRAM = 60_000
PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None, use_errno=True)


def die_with_parent(parent):
    """In a fresh child: SIGKILL when the parent goes; exit at once if it already went."""
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def mem_available_kb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    raise SystemExit("no MemAvailable in /proc/meminfo")


class Agent:
    """The agent with its stderr (the audit lines) read by a thread, each line timestamped."""

    def __init__(self, binary, cfg_text, tmp):
        self.path = os.path.join(tmp, "ghostwatch.json")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(cfg_text)
        check = subprocess.run([binary, "check", "-c", self.path], capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit("config refused: " + check.stderr)
        self.lines = []  # (monotonic s, text)
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            [binary, "run", "-c", self.path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            now = time.monotonic()
            with self.lock:
                self.lines.append((now, raw.decode("utf-8", "replace").rstrip("\n")))

    def find(self, pattern, since=0.0):
        """(time, line) of the first line at or after `since` matching every pair in `pattern`."""
        rx = [re.compile(r"(^|\s)" + re.escape(p) + r"(\s|$)") for p in pattern.split()]
        with self.lock:
            for t, line in self.lines:
                if t >= since and all(r.search(line) for r in rx):
                    return t, line
        return None

    def count(self, pattern, since=0.0):
        rx = [re.compile(r"(^|\s)" + re.escape(p) + r"(\s|$)") for p in pattern.split()]
        with self.lock:
            return sum(1 for t, line in self.lines if t >= since and all(r.search(line) for r in rx))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)


def config(floor_kb, rules):
    return (
        '{ "interval_ms": 1000, "syslog": "stderr", "mlock": false, "cooldown_s": 3600,\n'
        '  "min_available_kb": %d, "available_warn_kb": %d,\n'
        '  "rules": [\n    %s\n  ] }\n'
    ) % (floor_kb, floor_kb + 256 * 1024, ",\n    ".join(rules))


RULE_ETA = '{ "name": "eta", "trigger": "oom_eta", "eta_s": 60, "action": "log" }'
RULE_AVAIL = '{ "name": "avail", "trigger": "available", "action": "log" }'
RULE_BACKLOG = '{ "name": "backlog", "trigger": "backlog", "action": "log" }'


def owner_socket():
    """A child that holds an unread UDP socket; returns (pid, port)."""
    rd, wr = os.pipe()
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rd)
            die_with_parent(me)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 30)
            s.bind(("127.0.0.1", 0))
            os.write(wr, b"%d\n" % s.getsockname()[1])
            os.close(wr)
            while True:
                signal.pause()
        finally:
            os._exit(0)
    os.close(wr)
    with os.fdopen(rd) as f:
        port = int(f.readline())
    return pid, port


def field(line, key):
    m = re.search(r"(?:^|\s)" + key + r"=(\S+)", line or "")
    return m.group(1) if m else "-"


def flood_run(binary, tmp, rate_mib_s):
    a0 = mem_available_kb()
    floor = a0 - HEADROOM_KB
    agent = Agent(binary, config(floor, [RULE_ETA, RULE_AVAIL, RULE_BACKLOG]), tmp)
    pid = None
    try:
        time.sleep(WARM_S)
        pid, port = owner_socket()
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        payload = b"\xa5" * DGRAM
        t0 = time.monotonic()
        sent = 0
        stop_reason = "timeout"
        next_check = t0
        while True:
            now = time.monotonic()
            if now - t0 > FLOOD_MAX_S:
                break
            if now >= next_check:
                next_check = now + 0.05
                if mem_available_kb() < floor - SAFETY_KB:
                    stop_reason = "safety floor"
                    break
                if all(agent.find("event=action rule=" + r, t0) for r in ("eta", "avail", "backlog")):
                    stop_reason = "all acted"
                    break
            due = int((now - t0) * rate_mib_s * MIB)
            while sent < due:
                try:
                    tx.sendto(payload, ("127.0.0.1", port))
                except OSError:
                    pass
                sent += DGRAM
            time.sleep(0.002)
        t_stop = time.monotonic()
        a_stop = mem_available_kb()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pid = None
        tx.close()
        # Watch the recovery: the oom_eta incident closes once the slope is flat again.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not agent.find("event=recovered trigger=oom_eta", t_stop):
            time.sleep(0.5)
        rec = agent.find("event=recovered trigger=oom_eta", t_stop)
        print(
            "flood %d MiB/s: MemAvailable %d MiB at start, floor %d MiB; stopped after %.1f s (%s), "
            "%d MiB sent, MemAvailable %d MiB"
            % (rate_mib_s, a0 // 1024, floor // 1024, t_stop - t0, stop_reason, sent // MIB, a_stop // 1024)
        )
        for name, trig in (("eta", "oom_eta"), ("avail", "available"), ("backlog", "backlog")):
            hit = agent.find("event=action rule=" + name, t0)
            if hit:
                t, line = hit
                extra = ""
                if trig == "oom_eta":
                    extra = " eta_s=%s slope_kb_s=%s" % (field(line, "eta_s"), field(line, "slope_kb_s"))
                print(
                    "  %-9s first action %6.1f s after flood start (available_kb=%s rx_queue=%s%s)"
                    % (trig, t - t0, field(line, "available_kb"), field(line, "rx_queue"), extra)
                )
            else:
                print("  %-9s no action" % trig)
        warn = agent.find("event=threshold trigger=oom_eta level=warn", t0)
        if warn:
            print("  oom_eta   warn       %6.1f s (value=%s)" % (warn[0] - t0, field(warn[1], "value")))
        print(
            "  oom_eta   recovered  %s"
            % ("%.1f s after the flood stopped" % (rec[0] - t_stop) if rec else "not within 60 s")
        )
        pre = agent.count("trigger=oom_eta", 0) - agent.count("trigger=oom_eta", t0)
        print("  oom_eta lines before the flood: %d" % pre)
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        agent.stop()


def burst_child(stop_at):
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            die_with_parent(me)
            while time.monotonic() < stop_at:
                block = b"\x01" * (200 * 1000 * 1000)  # 200 MB, every page touched
                time.sleep(2)
                del block
                time.sleep(3)
        finally:
            os._exit(0)
    return pid


def benign_run(binary, tmp, seconds):
    big = os.path.join(tmp, "big.file")
    chunk = b"\x5a" * (16 * MIB)
    fd = os.open(big, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for _ in range(4096 // 16):
        os.write(fd, chunk)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    a0 = mem_available_kb()
    floor = a0 - HEADROOM_KB
    agent = Agent(binary, config(floor, [RULE_ETA]), tmp)
    pid = None
    try:
        time.sleep(WARM_S)
        t0 = time.monotonic()
        stop_at = t0 + seconds
        pid = burst_child(stop_at)
        passes = 0
        lo = a0
        while time.monotonic() < stop_at:
            fd = os.open(big, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            while time.monotonic() < stop_at:
                buf = os.read(fd, 4 * MIB)
                lo = min(lo, mem_available_kb())
                if not buf:
                    passes += 1
                    break
            os.close(fd)
            time.sleep(1)
        os.waitpid(pid, 0)
        pid = None
        time.sleep(5)
        acts = agent.count("event=action rule=eta", t0)
        act_thr = agent.count("event=threshold trigger=oom_eta level=act", t0)
        warns = agent.count("event=threshold trigger=oom_eta level=warn", t0)
        print(
            "benign %d s: 4 GiB file read %d times through the page cache, 200 MB alloc/free every 5 s; "
            "MemAvailable %d MiB at start, lowest %d MiB, floor %d MiB"
            % (seconds, passes, a0 // 1024, lo // 1024, floor // 1024)
        )
        print("  oom_eta false triggers (act thresholds + actions): %d + %d; warn lines: %d" % (act_thr, acts, warns))
        return act_thr + acts
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        agent.stop()
        os.unlink(big)


def main():
    binary = sys.argv[1]
    rates = [int(r) for r in (sys.argv[2] if len(sys.argv) > 2 else "64,16").split(",") if r]
    benign_s = int(sys.argv[3]) if len(sys.argv) > 3 else 180
    if os.geteuid() != 0:
        raise SystemExit("needs root")
    if mem_available_kb() < HEADROOM_KB + 4 * 1024 * 1024:
        raise SystemExit("less than 5.5 GiB available: not running a flood here")
    tmp = tempfile.mkdtemp(prefix="gw-oometa-")
    os.chmod(tmp, 0o755)
    try:
        for r in rates:
            flood_run(binary, tmp, r)
        false = benign_run(binary, tmp, benign_s) if benign_s > 0 else 0
    finally:
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    return 1 if false else 0


if __name__ == "__main__":
    sys.exit(main())
