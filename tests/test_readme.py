"""The README's two set-up commands are the ones CI and users run."""

import re

from conftest import REPO


def readme_commands():
    return re.findall(r"```sh\n(python3 -m venv .*?)\n```", (REPO / "README.md").read_text())


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) == 2, commands
    main_job, tests = commands
    assert "bench init" in main_job and "sh train_mymodel.sh" in main_job
    assert "pytest" in tests
    ci = (REPO / ".ci" / "run").read_text()
    assert tests in ci.splitlines()
