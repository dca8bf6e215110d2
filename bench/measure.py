"""Run one command inside a network namespace: wall time, the command's own peak RSS, its output.

Peak RSS comes from GNU time (`/usr/bin/time -f %M`), which forks the command from its own small
process. Reading `wait4`'s rusage in this Python process instead reports Python's own resident
size whenever that is larger (about 14 MB at start, more after reading a big output file):
Python spawns children with vfork, and the kernel carries the parent's high-water mark across
`execve` into the child's `ru_maxrss`.
"""
import os, signal, subprocess, tempfile, time

TIME = "/usr/bin/time"


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def run_in_ns(ns, cmd, timeout, stdout=True):
    """Run cmd in namespace ns, bounded by timeout seconds.

    Returns a dict: wall (s), rss (MB, NaN if unknown), out (stdout text, or "" when stdout is
    False), err (stderr text), code (exit code, None if killed), timed_out. On timeout the
    command itself is killed first (so GNU time still reports its peak RSS), then anything left
    in its process group.
    """
    if not os.access(TIME, os.X_OK):
        raise SystemExit(f"{TIME} is missing: apt-get install time")
    with tempfile.NamedTemporaryFile("r", prefix="rm-rss-") as rss, \
            tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        full = ["ip", "netns", "exec", ns, TIME, "-f", "%M", "-o", rss.name] + cmd
        t0 = time.perf_counter()
        p = subprocess.Popen(full, stdout=out if stdout else subprocess.DEVNULL, stderr=err,
                             start_new_session=True)
        timed_out = False
        while p.poll() is None:
            if time.perf_counter() - t0 > timeout:
                timed_out = True
                for c in _children(p.pid):  # `ip netns exec` has become `time`; its child is cmd
                    os.kill(c, signal.SIGKILL)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                break
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        try:
            p.wait(1)  # the process group may outlive a killed child for a moment
        except subprocess.TimeoutExpired:
            pass
        lines = rss.read().split("\n")
        nums = [ln for ln in lines if ln.strip().isdigit()]
        peak = int(nums[-1]) / 1024.0 if nums else float("nan")
        out.seek(0)
        err.seek(0)
        code = None if timed_out else p.returncode
        return {"wall": wall, "rss": peak, "out": out.read().decode(errors="replace") if stdout else "",
                "err": err.read().decode(errors="replace"), "code": code, "timed_out": timed_out}
