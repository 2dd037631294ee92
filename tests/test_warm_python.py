"""The tests' warm interpreter (tests/warm_python.py) behaves like a fresh ``python`` for a script."""

import os
import signal
import subprocess
import sys
import time

import pytest

import warm_python
from conftest import run, sigint_default

SCRIPT = """
import json, os, sys
import torch.utils.tensorboard  # a library the warm interpreter has imported: still importable
print(json.dumps({
    "argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0], "name": __name__, "file": __file__,
    "env": os.environ.get("AIGW_PROBE"), "stdin": sys.stdin.read(), "local": __import__("helper").VALUE,
    "main_is_me": sys.modules["__main__"].__dict__ is globals(),
}))
print("to stderr", file=sys.stderr)
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
    return tmp_path


@pytest.mark.skipif(not warm_python.usable(), reason="the warm interpreter is off (AIGBENCH_TEST_COLD) or not Linux")
def test_a_script_sees_the_same_process_warm_and_cold(scripts):
    env = {"AIGW_PROBE": "x y"}
    warm = run([sys.executable, "probe.py", "3", "--flag"], cwd=scripts, check=False, env=env)
    cold = run([sys.executable, "probe.py", "3", "--flag"], cwd=scripts, check=False, env=env, cold=True)
    assert (
        (warm.returncode, warm.stdout, warm.stderr)
        == (cold.returncode, cold.stdout, cold.stderr)
        == (
            3,
            cold.stdout,
            "to stderr\n",
        )
    )
    assert '"main_is_me": true' in cold.stdout and '"local": 7' in cold.stdout
    # an uncaught exception: exit status 1 and the script's own traceback, not the zygote's frames
    warm, cold = (run([sys.executable, "fail.py"], cwd=scripts, check=False, cold=c) for c in (False, True))
    assert warm.returncode == cold.returncode == 1
    assert warm.stderr == cold.stderr and "warm_python" not in warm.stderr
    # python -c and python -m
    code = "import sys; print(sys.argv)"
    warm, cold = (run([sys.executable, "-c", code, "a"], cwd=scripts, cold=c) for c in (False, True))
    assert warm.stdout == cold.stdout == "['-c', 'a']\n"
    warm, cold = (run([sys.executable, "-m", "probe", "0"], cwd=scripts, cold=c) for c in (False, True))
    assert warm.stdout == cold.stdout
    # a child launched through sys.executable inherits the pipes and returns its status
    warm = run([sys.executable, "launch.py"], cwd=scripts, check=False)
    assert warm.returncode == 5 and '"argv": ["probe.py", "5"]' in warm.stdout


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)


@pytest.mark.skipif(not warm_python.usable(), reason="the warm interpreter is off (AIGBENCH_TEST_COLD) or not Linux")
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
        # a setting read when torch loads: the call runs in a fresh interpreter
        proc = subprocess.run(
            [z.python, "-c", "import sys; print(sys.modules.get('torch') is None)"],
            env={"OMP_NUM_THREADS": "3", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )
        assert proc.stdout == "True\n"
        proc = subprocess.run(
            [z.python, "-c", "import sys; print(sys.modules.get('torch') is None)"],
            capture_output=True,
            text=True,
            env=dict(z.env0),
        )
        assert proc.stdout == "False\n"
    finally:
        z.close()
