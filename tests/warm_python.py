"""A warm interpreter for the scripts the tests run: the suite's time goes mostly to starting Python.

Every ``train.py``/``test.py``/``bench`` the tests run starts a new interpreter that spends 6 to 9 s
importing torch (and ``torch._dynamo``, which the first optimiser pulls in), torchvision, timm,
scikit-learn and albumentations before it reads one image. The suite runs a few hundred of them.

This module keeps one process per test worker (the *zygote*) that has imported those libraries once
and forks a fresh child for every script: the child gets the caller's argv, working folder,
environment and stdin/stdout/stderr (passed over a Unix socket), runs the script as ``__main__`` and
exits with its status, so the caller sees an ordinary process. ``python`` in the rendered shell
scripts and the library's own launches (``sys.executable`` in protocols and sweeps) reach the zygote
through a small client, written as an executable called ``python``.

What a fresh interpreter would do differently, and how it is kept apart:
- settings read when a library loads (thread counts, CUDA devices, ``PYTHONPATH``, hash seed): a
  call whose environment differs from the zygote's in any of :data:`COLD_KEYS` runs in a fresh
  interpreter (``os.execv`` of the real one), as does any interpreter flag other than ``-c``/``-m``;
- a module the script forgot to import but a library had imported: tests that run the main scripts
  and ``bench`` with ``cold=True`` start them the ordinary way, and so does every test that starts
  its own process (``subprocess.Popen``), the interrupt tests among them;
- ``AIGBENCH_TEST_COLD=1`` runs the whole suite without the zygote.
Linux only (``fork`` and ``SCM_RIGHTS``); elsewhere everything runs cold.
"""

from __future__ import annotations

import os
import shlex
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

# Settings a library reads once when it loads: a call that changes one of them gets a fresh interpreter.
COLD_KEYS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",
    "KMP_AFFINITY",
    "CUDA_VISIBLE_DEVICES",
    "PYTHONPATH",
    "PYTHONHASHSEED",
    "PYTHONHOME",
    "PYTHONSAFEPATH",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "TORCH_HOME",
    "HF_HOME",
)
# What every training or test run imports (``aigbench`` first: it sets OMP_WAIT_POLICY before torch loads).
PRELOAD = (
    "aigbench",
    "numpy",
    "PIL.Image",
    "cv2",
    "torch",
    "torch._dynamo",
    "torchvision",
    "timm",
    "albumentations",
    "sklearn.metrics",
    "scipy.stats",
    "torch.utils.tensorboard",
    "jinja2",
    "pyarrow.parquet",
)
_HEADER = struct.Struct("!I")

CLIENT = r"""
# Runs "python ARGS" in the tests' warm interpreter (tests/warm_python.py), or in a fresh one when it can't.
import json, os, signal, socket, struct, sys
REAL, SOCK, KEYS, ENV0 = {real!r}, {sock!r}, {keys!r}, {env0!r}
args = sys.argv[1:]
ok = bool(args) and (args[0] in ("-c", "-m") and len(args) > 1 or not args[0].startswith("-"))
ok = ok and all(os.environ.get(k) == ENV0.get(k) for k in KEYS)
conn = None
if ok:
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(SOCK)
    except OSError:
        conn = None
if conn is None:
    os.execv(REAL, [REAL, *args])
pid, pending = None, []
ignored = [int(s) for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM)
           if signal.getsignal(s) == signal.SIG_IGN]  # inherited, as a fresh interpreter would inherit them
def forward(sig, frame):  # Ctrl-C and kill reach the script, also before its pid is known
    if pid is None:
        pending.append(sig)
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, forward)
body = json.dumps({{"args": args, "cwd": os.getcwd(), "env": dict(os.environ), "pgid": os.getpgrp(),
                   "umask": os.umask(0o22), "ignored": ignored}}).encode()
socket.send_fds(conn, [struct.pack("!I", len(body)) + body], [0, 1, 2])
stream = conn.makefile("rb")
pid = int(stream.readline())
for s in pending:
    forward(s, None)
line = stream.readline()
status = int(line) if line.strip() else 1 << 8
if os.WIFSIGNALED(status):
    sig = os.WTERMSIG(status)
    if sig != signal.SIGKILL:
        signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)
sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)
"""


class Zygote:
    """One warm interpreter and the ``python`` client that reaches it."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="aigw"))
        self.sock = str(self.dir / "s")
        self.python = str(self.dir / "python")
        self.env0 = {k: os.environ[k] for k in COLD_KEYS if k in os.environ}
        client = CLIENT.format(real=sys.executable, sock=self.sock, keys=COLD_KEYS, env0=self.env0)
        (self.dir / "client.py").write_text(client)
        # a shell script, not a shebang line: those are cut at 127 characters on older kernels
        quoted = " ".join(shlex.quote(x) for x in (sys.executable, "-ES", str(self.dir / "client.py")))
        Path(self.python).write_text(f'#!/bin/sh\nexec {quoted} "$@"\n')
        os.chmod(self.python, 0o755)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, self.sock, self.python],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        ready = self.proc.stdout.readline()
        if ready.strip() != b"ready":
            err = self.proc.stderr.read().decode(errors="replace")
            raise RuntimeError(f"the warm interpreter did not start: {ready!r}\n{err[-3000:]}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for p in self.dir.iterdir():
            p.unlink()
        self.dir.rmdir()


def usable() -> bool:
    """Linux with pidfds (kernel 5.3), unless ``AIGBENCH_TEST_COLD`` asks for fresh interpreters only."""
    return (
        hasattr(os, "pidfd_open")
        and hasattr(socket, "send_fds")
        and os.environ.get("AIGBENCH_TEST_COLD", "") in ("", "0")
    )


# ---------------------------------------------------------------- the zygote itself (run as a script)


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    import json

    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    (size,) = _HEADER.unpack(data[: _HEADER.size])
    body = data[_HEADER.size :]
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise EOFError("client went away")
        body += chunk
    return json.loads(body), fds


def _run_child(req: dict, fds: list[int], python: str) -> None:
    """In the forked child: become the requested process, run it, exit with its status."""
    import atexit
    import builtins
    import io
    import signal
    import threading
    import types

    try:
        os.setpgid(0, req["pgid"])
    except OSError:
        pass
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # the caller's dispositions, not the zygote's: a shell without job control starts background
    # commands with SIGINT and SIGQUIT ignored, and Python then leaves SIGINT ignored
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGTERM):
        if sig in req["ignored"]:
            signal.signal(sig, signal.SIG_IGN)
        else:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    os.umask(req["umask"])
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["cwd"])
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    unbuffered = bool(req["env"].get("PYTHONUNBUFFERED"))

    def stream(fd: int, mode: str, errors: str) -> io.TextIOWrapper:
        tty = os.isatty(fd)
        raw = io.FileIO(fd, mode, closefd=False)
        buf = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
        return io.TextIOWrapper(buf, encoding="utf-8", errors=errors, line_buffering=tty, write_through=unbuffered)

    sys.stdin = sys.__stdin__ = stream(0, "r", "strict")
    sys.stdout = sys.__stdout__ = stream(1, "w", "strict")
    sys.stderr = sys.__stderr__ = stream(2, "w", "backslashreplace")
    sys.executable = python  # the library's own launches come back here
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()  # a fresh interpreter draws a new global seed; random reseeds at fork

    args = req["args"]
    code = 0
    try:
        if args[0] == "-m":
            import runpy

            sys.argv = [args[1], *args[2:]]
            sys.path[0] = req["cwd"]
            runpy._run_module_as_main(args[1], alter_argv=True)
        else:
            main = types.ModuleType("__main__")
            main.__builtins__ = builtins
            sys.modules["__main__"] = main
            if args[0] == "-c":
                sys.argv = ["-c", *args[2:]]
                sys.path[0] = ""
                source, name = args[1], "<string>"
            else:
                path = os.path.abspath(args[0])
                sys.argv = list(args)
                sys.path[0] = os.path.dirname(os.path.realpath(path))
                main.__file__ = path
                main.__cached__ = None
                with open(path, "rb") as f:
                    source, name = f.read(), path
            exec(compile(source, name, "exec"), main.__dict__)
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt as e:
        e.with_traceback(e.__traceback__.tb_next)
        sys.excepthook(type(e), e, e.__traceback__)
        code = -signal.SIGINT
    except BaseException as e:
        e.with_traceback(e.__traceback__.tb_next)  # the script's frames, not this one's
        sys.excepthook(type(e), e, e.__traceback__)
        code = 1
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
    finally:
        for s in (sys.stdout, sys.stderr):
            try:
                s.flush()
            except Exception:
                pass
        if code < 0:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code & 0xFF)


def _handle(conn: socket.socket, python: str) -> None:
    """In a forked handler: fork the runner, tell the client its pid, wait, send its status."""
    req, fds = _recv_request(conn)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _run_child(req, fds, python)
    for fd in fds:
        os.close(fd)
    conn.sendall(f"{pid}\n".encode())
    # the client is the process its caller sees: if it is killed, the script dies with it
    import select

    pidfd = os.pidfd_open(pid)
    while True:
        ready, _, _ = select.select([pidfd, conn], [], [])
        if pidfd in ready:
            break
        if not conn.recv(1):
            os.kill(pid, 9)
            break
    _, status = os.waitpid(pid, 0)
    try:
        conn.sendall(f"{status}\n".encode())
    except OSError:
        pass


def serve(sock_path: str, python: str) -> None:
    import importlib
    import signal
    import threading

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    if threading.active_count() != 1:
        print(f"threads after imports: {threading.enumerate()}", file=sys.stderr)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(16)
    server.settimeout(5)
    parent = os.getppid()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        while True:  # reap handlers that finished
            try:
                done, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if done == 0:
                break
        try:
            conn, _ = server.accept()
        except socket.timeout:
            if os.getppid() != parent:
                os._exit(0)  # the test worker is gone (killed): so is its zygote
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            server.close()
            try:
                _handle(conn, python)
            finally:
                os._exit(0)
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
