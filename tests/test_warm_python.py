"""The tests' warm interpreter (tests/warm_python.py) behaves like a fresh ``python`` for a script."""

import os
import signal
import subprocess
import sys
import time

import pytest

import warm_python
from conftest import _warm_python, run, sigint_default

needs_warm = pytest.mark.skipif(
    not warm_python.usable(), reason="the warm interpreter is off (AIGBENCH_TEST_COLD) or not Linux with pidfds"
)

SCRIPT = """
import json, os, sys
preloaded = "torch" in sys.modules  # True only in the warm interpreter: the comparison is not of two cold runs
import torch.utils.tensorboard  # a library the warm interpreter has imported: still importable
print(json.dumps({
    "argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0], "name": __name__, "file": __file__,
    "env": os.environ.get("AIGW_PROBE"), "stdin": sys.stdin.read(), "local": __import__("helper").VALUE,
    "main_is_me": sys.modules["__main__"].__dict__ is globals(), "umask": os.umask(0o22),
    "stdout": [sys.stdout.line_buffering, sys.stdout.encoding, sys.stdout.errors],
    "stderr": [sys.stderr.line_buffering, sys.stderr.errors],
}))
print("to stderr", file=sys.stderr)
print("preloaded" if preloaded else "fresh", file=sys.stderr)
sys.exit(int(sys.argv[1]))
"""


@pytest.fixture
def scripts(tmp_path):
    (tmp_path / "probe.py").write_text(SCRIPT)
    (tmp_path / "helper.py").write_text("VALUE = 7\n")  # beside the script: sys.path[0] is the script's folder
    (tmp_path / "fail.py").write_text("import helper\nraise ValueError('bad input in fail.py')\n")
    (tmp_path / "launch.py").write_text(  # the library launches sys.executable: it reaches the zygote too
        "import subprocess, sys\nsys.exit(subprocess.run([sys.executable, 'probe.py', '5']).returncode)\n"
    )
    # a name the zygote's own module has (os) is not defined for a script run with -m; annotations
    # are evaluated (no `from __future__ import annotations` leaks from the zygote)
    (tmp_path / "bare.py").write_text("x: int = 1\nprint(__annotations__)\nprint(os.getcwd())\n")
    (tmp_path / "order.py").write_text(  # no flush: the order of the two streams, merged, is the interpreter's
        "import sys\nfor i in range(3):\n    print('out', i)\n    print('err', i, file=sys.stderr)\nsys.exit(-1)\n"
    )
    return tmp_path


def both(cmd: list, cwd, **kw) -> tuple:
    return tuple(run(cmd, cwd=cwd, check=False, cold=c, **kw) for c in (False, True))


@needs_warm
def test_a_script_sees_the_same_process_warm_and_cold(scripts):
    warm, cold = both([sys.executable, "probe.py", "3", "--flag"], scripts, env={"AIGW_PROBE": "x y"})
    assert warm.stderr.endswith("preloaded\n") and cold.stderr.endswith("fresh\n")
    assert (warm.returncode, warm.stdout, warm.stderr[:10]) == (cold.returncode, cold.stdout, cold.stderr[:10])
    assert cold.returncode == 3 and cold.stderr.startswith("to stderr\n")
    assert '"main_is_me": true' in cold.stdout and '"local": 7' in cold.stdout
    # an uncaught exception: exit status 1 and the script's own traceback, not the zygote's frames
    warm, cold = both([sys.executable, "fail.py"], scripts)
    assert warm.returncode == cold.returncode == 1
    assert warm.stderr == cold.stderr and "warm_python" not in warm.stderr
    # python -c and python -m; -m runs in a __main__ of its own, without the zygote's globals
    warm, cold = both([sys.executable, "-c", "import sys; print(sys.argv)", "a"], scripts)
    assert warm.stdout == cold.stdout == "['-c', 'a']\n"
    warm, cold = both([sys.executable, "-m", "probe", "0"], scripts)
    assert warm.stdout == cold.stdout and warm.returncode == cold.returncode == 0
    warm, cold = both([sys.executable, "-m", "bare"], scripts)
    assert (warm.returncode, warm.stdout) == (cold.returncode, cold.stdout) == (1, "{'x': <class 'int'>}\n")
    assert "NameError: name 'os' is not defined" in warm.stderr
    # a negative exit status, and stdout and stderr merged in the interpreter's order
    warm, cold = (
        subprocess.run(
            [exe, "order.py"], cwd=scripts, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
        )
        for exe in (_warm_python(), sys.executable)
    )
    assert (warm.returncode, warm.stdout) == (cold.returncode, cold.stdout) and cold.returncode == 255
    # a child launched through sys.executable inherits the pipes and returns its status
    warm = run([sys.executable, "launch.py"], cwd=scripts, check=False)
    assert warm.returncode == 5 and '"argv": ["probe.py", "5"]' in warm.stdout


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)


def in_new_session() -> None:
    os.setsid()


@needs_warm
def test_signals_reach_the_script_and_its_death_is_reported(scripts):
    z = warm_python.Zygote()
    try:
        proc = subprocess.run([z.python, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], check=False)
        assert proc.returncode == -signal.SIGKILL
        slow = subprocess.Popen(
            [z.python, "-c", "import sys, time\nprint('up', flush=True)\ntime.sleep(60)"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=sigint_default,
        )
        assert slow.stdout.readline() == "up\n"
        slow.send_signal(signal.SIGINT)  # forwarded: the script gets KeyboardInterrupt and dies of SIGINT
        _, err = slow.communicate(timeout=30)
        assert slow.returncode == -signal.SIGINT and "KeyboardInterrupt" in err
        # the caller's ignored signals, not the zygote's (a shell without job control ignores SIGINT)
        probe = "import signal; print(signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGQUIT))"
        for pre in (sigint_default, ignore_sigint):
            warm, cold = (
                subprocess.run([exe, "-c", probe], capture_output=True, text=True, preexec_fn=pre).stdout
                for exe in (z.python, sys.executable)
            )
            assert warm == cold, pre
        # the client is the process its caller sees: killed, it takes the script with it
        slow = subprocess.Popen(
            [z.python, "-c", "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(60)"],
            stdout=subprocess.PIPE,
            text=True,
        )
        script_pid = int(slow.stdout.readline())
        slow.kill()
        slow.wait(timeout=30)
        deadline = time.time() + 30
        while os.path.exists(f"/proc/{script_pid}") and time.time() < deadline:
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{script_pid}")
        # fresh interpreters: a setting read when torch loads, a caller in another session
        is_fresh = "import sys; print(sys.modules.get('torch') is None)"
        proc = subprocess.run(
            [z.python, "-c", is_fresh], env={**os.environ, "OMP_NUM_THREADS": "3"}, capture_output=True, text=True
        )
        assert proc.stdout == "True\n"
        proc = subprocess.run([z.python, "-c", is_fresh], capture_output=True, text=True, preexec_fn=in_new_session)
        assert proc.stdout == "True\n"
        proc = subprocess.run([z.python, "-c", is_fresh], capture_output=True, text=True)
        assert proc.stdout == "False\n"
        # what the caller's own imports put in its environment (cv2: LD_LIBRARY_PATH) is no change
        assert z.preloaded  # OMP_WAIT_POLICY (aigbench), LD_LIBRARY_PATH (cv2), KMP_* (scikit-learn)
        env = {**os.environ, **z.preloaded}
        proc = subprocess.run([z.python, "-c", is_fresh], capture_output=True, text=True, env=env)
        assert proc.stdout == "False\n"
    finally:
        z.close()
