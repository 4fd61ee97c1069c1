"""Child processes: the simulators, and the clients whose costs are measured.

Each client runs as its own process so that its CPU time and peak RSS are its
own (``os.wait4`` gives the child's rusage), with the simulators in two more
processes. The machine has two cores shared with whatever else runs, so every
figure is a median of several runs and the baselines run in the same
invocation, interleaved with fd-sync.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def child_env() -> dict[str, str]:
    """The environment for every child: no FD_SYNC_* from the caller, JSON logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FD_SYNC_")}
    env.update(PYTHONUNBUFFERED="1", FD_SYNC_LOG_FORMAT="json", PYTHONPATH=str(ROOT))
    return env


class Simulator:
    """``python -m fd_sync.simulators KIND ...`` with its JSON-lines control channel."""

    def __init__(self, kind: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "fd_sync.simulators", kind, "--stdin", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {kind} simulator did not start")
        self.hello: dict[str, Any] = json.loads(line)

    def command(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"simulator command {cmd} failed: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the simulator stops at end of input
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Run:
    """One measured child process."""

    wall: float  # seconds
    cpu: float  # user + system seconds
    rss_mb: float  # peak resident set size
    code: int
    stdout: str
    stderr: str

    def brief(self) -> dict[str, float]:
        return {"wall": round(self.wall, 4), "cpu": round(self.cpu, 4), "rss_mb": self.rss_mb}


def measure(argv: list[str], *, timeout: float = 900) -> Run:
    """Run ``argv`` to completion; its wall time, CPU time and peak RSS (from wait4)."""
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{os.getpid()}-{time.time_ns()}"
    with open(f"{out_path}.out", "w+") as out, open(f"{out_path}.err", "w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=child_env(), cwd=ROOT)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    for suffix in (".out", ".err"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    return Run(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mb=round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        code=proc.returncode,
        stdout=stdout,
        stderr=stderr,
    )


def check(run: Run, what: str) -> Run:
    if run.code != 0:
        tail = (run.stderr or run.stdout)[-2000:]
        raise RuntimeError(f"{what} exited {run.code}:\n{tail}")
    return run


@dataclass(frozen=True)
class Summary:
    """The median of several runs of one thing, with the spread kept for the record."""

    wall: float
    cpu: float
    rss_mb: float
    runs: int
    cpu_min: float
    cpu_max: float

    @classmethod
    def of(cls, runs: list[Run]) -> Summary:
        cpus = [r.cpu for r in runs]
        return cls(
            wall=statistics.median(r.wall for r in runs),
            cpu=statistics.median(cpus),
            rss_mb=statistics.median(r.rss_mb for r in runs),
            runs=len(runs),
            cpu_min=min(cpus),
            cpu_max=max(cpus),
        )

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def machine_load() -> dict[str, float]:
    """Load averages and this moment's CPU count, to say how busy the machine was."""
    one, five, fifteen = os.getloadavg()
    return {"load1": one, "load5": five, "load15": fifteen, "cpus": os.cpu_count() or 0}


class BusyMeter:
    """The share of all cores busy between start and stop, from /proc/stat."""

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[int, int]:
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return (0, 0)
        values = [int(v) for v in fields]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return (sum(values) - idle, sum(values))

    def busy(self) -> float:
        busy0, total0 = self._start
        busy1, total1 = self._sample()
        return (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
