"""A warm interpreter for the scripts the tests run: the suite's time goes mostly to starting Python.

Every ``train.py``/``test.py``/``bench`` the tests run starts a new interpreter that spends 6 to 9 s
importing torch (and ``torch._dynamo``, which the first optimiser pulls in), torchvision, timm,
scikit-learn and albumentations before it reads one image. The suite runs a few hundred of them.

This module keeps one process per test worker (the *zygote*) that has imported those libraries once
and forks a fresh child for every script: the child gets the caller's argv, working folder,
environment, umask, ignored signals and stdin/stdout/stderr (passed over a Unix socket), sets up its
streams as CPython does, runs the script as ``__main__`` and ends as CPython's shutdown would
(threads joined, atexit, flush, exit status or death by SIGINT; the slow module teardown skipped),
so the caller sees an ordinary process. ``python`` in the rendered shell scripts and the library's own launches
(``sys.executable`` in protocols and sweeps) reach the zygote through a small client, written as an
executable called ``python``; Ctrl-C and kill sent to the client reach the script, and a client
killed takes its script with it.

What a fresh interpreter would do differently, and how it is kept apart:
- settings read when a library loads (thread counts, locale, CUDA, ``PYTHON*``, ``TMPDIR``, home and
  cache folders): a call whose environment differs from the zygote's in a key of
  :data:`COLD_PREFIXES` runs in a fresh interpreter (``os.execv`` of the real one), as do interpreter
  flags other than ``-c``/``-m`` and a caller in another session;
- descriptors other than stdin/stdout/stderr are not passed on (``pass_fds``: torch.compile's
  worker pool; no test uses it);
- the hash seed is the zygote's (torch's and numpy's global generators are reseeded per child);
- a module the script forgot to import but a library had imported: tests that run the main scripts
  with ``cold=True`` start them the ordinary way, and so does every test that starts its own
  process (``subprocess.Popen``), the interrupt tests among them;
- ``AIGBENCH_TEST_COLD=1`` runs the whole suite without the zygote. Linux with pidfds only; where
  the zygote or its client cannot start, the tests say so once and run cold.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

# Environment read once when a library or the interpreter loads: a call that changes one gets a
# fresh interpreter.
COLD_PREFIXES = (
    "OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_", "CUDA_", "NCCL_", "LD_", "PYTHON", "TORCH", "PYTORCH_",
    "HF_", "OPENCV_", "LANG", "LC_", "TMPDIR", "HOME", "XDG_",
)  # fmt: skip
WARM_KEYS = ("PYTHONUNBUFFERED", "PYTHON")  # the streams follow the first; the shell scripts read the second
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
_FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")

CLIENT = r"""
# Runs "python ARGS" in the tests' warm interpreter (tests/warm_python.py), or in a fresh one when it can't.
import json, os, signal, socket, struct, sys
REAL, SOCK, PREFIXES, WARM, SID = {real!r}, {sock!r}, {prefixes!r}, {warm!r}, {sid!r}
ENV0, PRELOADED = {env0!r}, {preloaded!r}  # the zygote's environment before and after its imports
args = sys.argv[1:]
def cold_env(env):
    return {{k: v for k, v in env.items() if k.startswith(PREFIXES) and k not in WARM}}
ok = bool(args) and (args[0] in ("-c", "-m") and len(args) > 1 or not args[0].startswith("-"))
env = cold_env(os.environ)  # what the caller's own imports set (cv2: LD_LIBRARY_PATH) is no change
why = {{k: (env.get(k), ENV0.get(k), PRELOADED.get(k)) for k in {{*env, *ENV0, *PRELOADED}}
       if env.get(k) not in (ENV0.get(k), PRELOADED.get(k, ENV0.get(k)))}}
ok = ok and not why and os.getsid(0) == SID
conn = None
if ok:
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(SOCK)
    except OSError:
        conn = None
if os.environ.get("AIGBENCH_TEST_WARM_LOG"):  # which calls ran where, and why
    with open(os.environ["AIGBENCH_TEST_WARM_LOG"], "a") as log:
        print("warm" if conn else "cold", args[:2], why, os.getsid(0) == SID, file=log)
if conn is None:
    os.execv(REAL, [REAL, *args])
pid, pending = None, []
sigs = [getattr(signal, n) for n in {forwarded!r}]
ignored = [int(s) for s in sigs if signal.getsignal(s) == signal.SIG_IGN]  # as a fresh interpreter inherits them
def forward(sig, frame):  # Ctrl-C and kill reach the script, also before its pid is known
    if pid is None:
        pending.append(sig)
        return
    conn.sendall(b"%d\n" % sig)  # the handler signals through its pidfd: never a reused pid
for s in sigs:
    if s not in ignored:
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


def cold_env(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith(COLD_PREFIXES) and k not in WARM_KEYS}


class Zygote:
    """One warm interpreter and the ``python`` client that reaches it; raises RuntimeError when
    either cannot start here (the caller then runs scripts cold)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="aigw"))
        self.name = f"aigbench-warm-{os.getpid()}-{os.urandom(6).hex()}"
        self.sock = "\0" + self.name  # an abstract socket: no file, no path length limit
        self.python = str(self.dir / "python")
        self.env0 = cold_env(dict(os.environ))
        self.proc = subprocess.Popen(
            [sys.executable, __file__, self.name, self.python],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        ready = self.proc.stdout.readline()
        if not ready.startswith(b"ready "):
            err = self.proc.stdout.read().decode(errors="replace") if self.proc.poll() is not None else ""
            self.close()
            raise RuntimeError(f"the warm interpreter did not start: {ready!r} {err[-3000:]}")
        self.proc.stdout.close()  # nothing more comes: the zygote's output goes nowhere from here on
        self.preloaded = preloaded = cold_env(json.loads(ready[len(b"ready ") :]))
        client = CLIENT.format(
            real=sys.executable,
            sock=self.sock,
            prefixes=COLD_PREFIXES,
            warm=WARM_KEYS,
            env0=self.env0,
            preloaded=preloaded,
            sid=os.getsid(0),
            forwarded=_FORWARDED,
        )
        (self.dir / "client.py").write_text(client)
        # a shell script, not a shebang line: those are cut at 127 characters on older kernels
        quoted = " ".join(shlex.quote(x) for x in (sys.executable, "-ES", str(self.dir / "client.py")))
        Path(self.python).write_text(f'#!/bin/sh\nexec {quoted} "$@"\n')
        os.chmod(self.python, 0o755)
        try:  # the client runs here (no noexec /tmp, a /bin/sh) and the zygote answers it
            probe = subprocess.run(
                [self.python, "-c", "import sys; sys.exit(7 if 'torch' in sys.modules else 8)"],
                capture_output=True,
                stdin=subprocess.DEVNULL,
            )
        except OSError as e:
            probe = e
        if getattr(probe, "returncode", None) != 7:
            self.close()
            raise RuntimeError(f"the warm interpreter's client does not work here: {probe}")

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
    """Linux with pidfds and fd passing, unless ``AIGBENCH_TEST_COLD`` asks for fresh interpreters only."""
    return (
        hasattr(os, "pidfd_open")
        and hasattr(socket, "send_fds")
        and os.environ.get("AIGBENCH_TEST_COLD", "") in ("", "0")
    )


# ---------------------------------------------------------------- the zygote itself (run as a script)

_PRELOAD_ENV: dict = {}  # what the preloaded imports put in the environment (a fresh run's imports would too)
_DIE_BY: list = []  # the signal a script that ended by KeyboardInterrupt dies of, after the shutdown
_ROLE: list = []  # ["script"] in a forked script process


def _exit_like_python(status: object) -> None:
    """End the script's process as CPython's shutdown would, less its slow part: non-daemon threads
    joined, atexit callbacks, the script's globals released (an unclosed file is flushed), the
    standard streams flushed (exit status 120 if that fails), then the status of ``sys.exit`` or,
    after an uncaught KeyboardInterrupt, death by SIGINT. The module teardown of torch & co. that a
    fresh interpreter spends about 3 s on is skipped (``os._exit``)."""
    import atexit
    import gc
    import signal
    import threading

    if status is None:
        code = 0
    elif isinstance(status, int):
        code = status
    else:
        print(status, file=sys.stderr)
        code = 1
    try:
        threading._shutdown()
    except BaseException:
        sys.excepthook(*sys.exc_info())
    atexit._run_exitfuncs()
    main = sys.modules.get("__main__")
    if main is not None:
        main.__dict__.clear()
    gc.collect()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = 120
    if _DIE_BY:
        signal.signal(_DIE_BY[0], signal.SIG_DFL)
        os.kill(os.getpid(), _DIE_BY[0])
    try:
        os._exit(code & 0xFF)
    except OverflowError:
        os._exit(1)


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    while len(data) < _HEADER.size:
        data += conn.recv(_HEADER.size - len(data))
    (size,) = _HEADER.unpack(data[: _HEADER.size])
    body = data[_HEADER.size :]
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise EOFError("client went away")
        body += chunk
    return json.loads(body), fds


def _stdio(fd: int, unbuffered: bool) -> object:
    """``sys.stdin``/``stdout``/``stderr`` on ``fd`` as CPython's ``create_stdio`` makes them."""
    import io

    original = (sys.__stdin__, sys.__stdout__, sys.__stderr__)[fd]
    reading = fd == 0
    raw = io.FileIO(fd, "rb" if reading else "wb", closefd=False)
    try:
        raw.name = ("<stdin>", "<stdout>", "<stderr>")[fd]
    except AttributeError:
        pass
    if reading:
        buf = io.BufferedReader(raw)
    else:
        buf = raw if unbuffered else io.BufferedWriter(raw)
    line_buffering = not reading and not unbuffered and (raw.isatty() or fd == 2)
    return io.TextIOWrapper(
        buf,
        encoding=original.encoding,
        errors=original.errors,
        newline="\n",
        line_buffering=line_buffering,
        write_through=unbuffered and not reading,
    )


def _become(req: dict, fds: list[int], python: str) -> None:
    """In the forked child: take on the caller's process state."""
    import importlib
    import signal
    import tempfile as tempfile_module
    import warnings

    try:
        os.setpgid(0, req["pgid"])
    except OSError:
        pass
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for name in _FORWARDED:
        sig = getattr(signal, name)
        if sig in req["ignored"]:
            signal.signal(sig, signal.SIG_IGN)
        else:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    os.umask(req["umask"])
    os.environ.clear()
    os.environ.update(req["env"])
    for k, v in _PRELOAD_ENV.items():
        os.environ.setdefault(k, v)
    os.chdir(req["cwd"])
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    unbuffered = bool(req["env"].get("PYTHONUNBUFFERED"))
    sys.stdin = sys.__stdin__ = _stdio(0, unbuffered)
    sys.stdout = sys.__stdout__ = _stdio(1, unbuffered)
    sys.stderr = sys.__stderr__ = _stdio(2, unbuffered)
    sys.executable = python  # the library's own launches come back here
    tempfile_module.tempdir = None
    importlib.invalidate_caches()  # files written since the zygote looked at a folder
    warnings._filters_mutated()  # warnings the zygote printed are printed again
    if "numpy" in sys.modules:  # a fresh interpreter draws new global seeds (random reseeds at fork)
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        sys.modules["torch"].seed()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [getattr(signal, n) for n in _FORWARDED])


def _run_script(args: list[str], cwd: str) -> None:
    """Run ``python ARGS`` as ``__main__``. An uncaught exception prints the script's own traceback
    and ends as ``SystemExit(1)``; the caller hands the SystemExit to :func:`_exit_like_python`."""
    import builtins
    import signal
    import types

    main = types.ModuleType("__main__")
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    try:
        if args[0] == "-m":
            import runpy

            sys.argv = ["-m", *args[2:]]
            sys.path[0] = cwd
            runpy._run_module_as_main(args[1], alter_argv=True)
        else:
            if args[0] == "-c":
                sys.argv = ["-c", *args[2:]]
                sys.path[0] = ""
                source, name = args[1], "<string>"
            else:
                path = args[0] if os.path.isabs(args[0]) else os.path.join(cwd, args[0])
                sys.argv = list(args)
                sys.path[0] = os.path.dirname(os.path.realpath(path))
                main.__file__ = path
                main.__cached__ = None
                try:
                    with open(path, "rb") as f:
                        source, name = f.read(), path
                except OSError as e:
                    print(
                        f"{sys.executable}: can't open file {path!r}: [Errno {e.errno}] {e.strerror}", file=sys.stderr
                    )
                    raise SystemExit(2) from None
            exec(compile(source, name, "exec", dont_inherit=True), main.__dict__)
    except SystemExit:
        raise
    except BaseException as e:
        e.with_traceback(e.__traceback__.tb_next)  # the script's frames, not this module's
        sys.excepthook(type(e), e, e.__traceback__)
        if isinstance(e, KeyboardInterrupt):
            _DIE_BY.append(signal.SIGINT)
        raise SystemExit(1) from None


def _handle(conn: socket.socket, python: str) -> None:
    """In a forked handler: fork the script, tell the client its pid, relay its signals, and send
    its status when it ends; if the client dies, so does the script."""
    import select
    import signal

    req, fds = _recv_request(conn)
    forwarded = [getattr(signal, n) for n in _FORWARDED]
    signal.pthread_sigmask(signal.SIG_BLOCK, forwarded)  # until the script has the caller's handlers
    pid = os.fork()
    if pid == 0:
        _ROLE.append("script")
        conn.close()
        _become(req, fds, python)
        try:
            _run_script(req["args"], req["cwd"])
            status = None
        except SystemExit as e:
            status = e.code
        _exit_like_python(status)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, forwarded)
    try:
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        conn.sendall(f"{pid}\n".encode())
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.register(conn, select.POLLIN)
        pending = b""
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if pidfd in ready:
                break
            chunk = conn.recv(256)
            if not chunk:  # the client is gone
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                signal.pidfd_send_signal(pidfd, int(line))  # through the pidfd: never a reused pid
        _, status = os.waitpid(pid, 0)
        conn.sendall(f"{status}\n".encode())
    except BaseException:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
        raise


def serve(name: str, python: str) -> None:
    import importlib
    import signal

    env_before = dict(os.environ)
    for module in PRELOAD:
        try:
            importlib.import_module(module)
        except Exception:
            pass
    _PRELOAD_ENV.update({k: v for k, v in os.environ.items() if env_before.get(k) != v})
    os.close(os.pidfd_open(os.getpid()))  # fails where the kernel has no pidfds: the caller runs cold
    for sig in (signal.SIGINT, signal.SIGHUP):  # a terminal's Ctrl-C is for the scripts, not for us
        signal.signal(sig, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0" + name)
    server.listen(16)
    server.settimeout(5)
    parent = os.getppid()
    sys.stdout.write(f"ready {json.dumps(_PRELOAD_ENV)}\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
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
        if os.fork() == 0:
            server.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                _handle(conn, python)
            except BaseException:
                if _ROLE:
                    raise  # a script process whose setup failed: the traceback, and the interpreter's exit
                os._exit(1)
            os._exit(0)
        conn.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
