"""The sandbox runs real subprocesses: normal outcomes, hostile programs, limits and clean-up."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from liftdspy.sandbox import (
    SandboxJob,
    SandboxLimits,
    SandboxResult,
    TestOutcome,
    detect_isolation,
    run_many,
    run_tests,
)

ADD = "def add(a, b):\n    return a + b\n"
FAST = SandboxLimits(timeout_s=5.0, test_timeout_s=1.0)


def outcomes(result: SandboxResult) -> list[TestOutcome]:
    return [test.outcome for test in result.tests]


# --- normal outcomes ---------------------------------------------------------------------------


def test_pass_fail_and_error_are_told_apart() -> None:
    result = run_tests(ADD, ["assert add(1, 2) == 3", "assert add(1, 1) == 3", "add(None, 1)"])

    assert result.loaded and result.load_error is None
    assert outcomes(result) == [TestOutcome.passed, TestOutcome.failed, TestOutcome.error]
    assert (result.passed, result.total, result.pass_rate) == (1, 3, pytest.approx(1 / 3))
    failed, error = result.tests[1], result.tests[2]
    assert failed.error_type == "AssertionError"
    assert failed.message == "assert add(1, 1) == 3 (left: 2, right: 3)"
    assert error.error_type == "TypeError" and "NoneType" in (error.message or "")
    assert result.tests[0].source == "assert add(1, 2) == 3"


def test_assertion_message_from_the_test_is_kept() -> None:
    result = run_tests(ADD, ["assert add(1, 1) == 3, 'one plus one'"])
    assert result.tests[0].outcome is TestOutcome.failed
    assert result.tests[0].message == "one plus one"


def test_syntax_error_in_code_is_a_load_error_and_no_test_passes() -> None:
    result = run_tests("def add(a, b)\n    return a + b\n", ["assert add(1, 2) == 3"])

    assert not result.loaded
    assert result.load_error is not None and result.load_error.startswith("SyntaxError")
    assert "line 1" in result.load_error
    assert outcomes(result) == [TestOutcome.error]
    assert result.tests[0].error_type == "NotRun"
    assert result.pass_rate == 0.0


def test_exception_at_top_level_is_a_load_error() -> None:
    result = run_tests("raise ValueError('bad import-time state')", ["assert True"])
    assert not result.loaded
    assert result.load_error == "ValueError: bad import-time state"


def test_syntax_error_in_one_test_only_fails_that_test() -> None:
    result = run_tests(ADD, ["assert add(1, 2) ==", "assert add(2, 2) == 4"])
    assert outcomes(result) == [TestOutcome.error, TestOutcome.passed]
    assert result.tests[0].error_type == "SyntaxError"


def test_setup_runs_after_code_and_before_tests() -> None:
    result = run_tests(ADD, ["assert add(X, X) == 4"], setup="X = add(1, 1)")
    assert outcomes(result) == [TestOutcome.passed]

    broken = run_tests(ADD, ["assert True"], setup="X = undefined_name")
    assert not broken.loaded
    assert broken.load_error == "setup: NameError: name 'undefined_name' is not defined"


def test_no_tests_means_pass_rate_zero() -> None:
    result = run_tests(ADD, [])
    assert result.loaded and result.total == 0 and result.pass_rate == 0.0


def test_sys_exit_in_a_test_is_an_error_and_later_tests_still_run() -> None:
    result = run_tests(ADD, ["import sys; sys.exit(3)", "assert add(1, 2) == 3"])
    assert outcomes(result) == [TestOutcome.error, TestOutcome.passed]
    assert result.tests[0].error_type == "SystemExit"


def test_hard_exit_reports_the_unfinished_tests() -> None:
    result = run_tests(ADD, ["import os; os._exit(0)", "assert True"])
    assert result.loaded
    assert outcomes(result) == [TestOutcome.error, TestOutcome.error]
    assert result.tests[0].error_type == "SandboxCrash"
    assert (result.tests[1].message or "").startswith("not run")


# --- time, CPU and memory ----------------------------------------------------------------------


def test_infinite_loop_in_a_test_times_out_and_the_next_test_runs() -> None:
    result = run_tests(ADD, ["while True: pass", "assert add(1, 2) == 3"], limits=FAST)
    assert outcomes(result) == [TestOutcome.timeout, TestOutcome.passed]
    assert not result.timed_out
    assert 0.9 <= result.tests[0].duration_s < 3.0


def test_program_that_ignores_the_test_alarm_is_killed_by_the_wall_clock() -> None:
    stubborn = "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True: pass"
    limits = SandboxLimits(timeout_s=2.0, test_timeout_s=0.5, cpu_s=30)
    result = run_tests(ADD, [stubborn, "assert True"], limits=limits)

    assert result.timed_out
    assert outcomes(result) == [TestOutcome.timeout, TestOutcome.timeout]
    assert (result.tests[1].message or "").startswith("not run")
    assert result.duration_s < 6.0


def test_infinite_loop_at_top_level_is_a_timed_out_load() -> None:
    result = run_tests("while True: pass", ["assert True"], limits=SandboxLimits(timeout_s=1.5))
    assert result.timed_out and not result.loaded
    assert (result.load_error or "").startswith("Timeout")


def test_cpu_limit_stops_a_busy_program() -> None:
    limits = SandboxLimits(timeout_s=8.0, test_timeout_s=8.0, cpu_s=1)
    result = run_tests(ADD, ["while True: pass"], limits=limits)
    assert outcomes(result) == [TestOutcome.timeout]
    assert "CPU" in (result.tests[0].message or "")  # the CPU limit, not the 8 s wall clock


def test_memory_bomb_raises_memory_error_and_the_process_survives() -> None:
    bomb = "blocks = []\nwhile True: blocks.append(bytearray(50 * 1024 * 1024))"
    limits = SandboxLimits(memory_mb=256, timeout_s=10.0, test_timeout_s=5.0)
    result = run_tests(ADD, [bomb, "blocks = None", "assert add(1, 2) == 3"], limits=limits)
    assert outcomes(result) == [TestOutcome.error, TestOutcome.passed, TestOutcome.passed]
    assert result.tests[0].error_type == "MemoryError"


# --- hostile programs ------------------------------------------------------------------------


def test_fork_subprocess_and_system_are_refused() -> None:
    tests = [
        "import os\nwhile True: os.fork()",
        "import subprocess; subprocess.run(['true'])",
        "import os; os.system('true')",
        "import os; os.execv('/bin/true', ['true'])",
        "import os; os.posix_spawn('/bin/true', ['true'], {})",
    ]
    result = run_tests("", tests)
    assert outcomes(result) == [TestOutcome.error] * len(tests)
    assert all(test.error_type == "PermissionError" for test in result.tests)


@pytest.mark.skipif(not detect_isolation().separate_uid, reason="needs root to switch uid")
def test_fork_behind_the_audit_hook_is_refused_by_the_kernel() -> None:
    # `_posixsubprocess.fork_exec` raises no audit event; RLIMIT_NPROC=0 on our own uid stops it.
    direct_fork = (
        "import _posixsubprocess, os\n"
        "r, w = os.pipe()\n"
        "_posixsubprocess.fork_exec([b'/bin/true'], [b'/bin/true'], True, (), None, None,"
        " -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, -1, -1, None, False)"
    )
    result = run_tests("", [direct_fork])
    assert result.tests[0].error_type == "BlockingIOError"


def test_write_and_delete_outside_the_work_directory_are_refused(tmp_path: Path) -> None:
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    escape = Path("/tmp") / f"liftdspy-escape-{uuid.uuid4().hex}"
    tests = [
        f"open({str(escape)!r}, 'w').write('x')",
        f"import os; os.open({str(escape)!r}, os.O_WRONLY | os.O_CREAT)",
        f"import os; os.remove({str(victim)!r})",
        f"import pathlib; pathlib.Path({str(victim)!r}).write_text('gone')",
        "open('inside.txt', 'w').write('ok'); assert open('inside.txt').read() == 'ok'",
    ]
    result = run_tests("", tests)

    assert outcomes(result) == [TestOutcome.error] * 4 + [TestOutcome.passed]
    assert all(test.error_type == "PermissionError" for test in result.tests[:4])
    assert not escape.exists()
    assert victim.read_text() == "precious"


def test_socket_connect_never_reaches_a_listening_server() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        result = run_tests(
            "",
            [
                f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)",
                "import urllib.request; urllib.request.urlopen('http://example.com', timeout=2)",
            ],
        )
        # The kernel completes handshakes before accept(): any connection would be queued here.
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()

    assert outcomes(result) == [TestOutcome.error, TestOutcome.error]


def test_secrets_in_the_callers_environment_are_not_visible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIFTDSPY_TEST_SECRET", "hunter2-do-not-leak")
    dump = (
        "import os\n"
        "print(dict(os.environ))\n"
        "try:\n"
        "    print(open(f'/proc/{os.getppid()}/environ', 'rb').read())\n"
        "except OSError as exc:\n"
        "    print('refused', type(exc).__name__)"
    )
    result = run_tests("", [dump, "import os; assert 'LIFTDSPY_TEST_SECRET' not in os.environ"])

    assert "hunter2" not in result.stdout
    assert outcomes(result)[1] is TestOutcome.passed
    if detect_isolation().separate_uid:
        assert "refused PermissionError" in result.stdout


def test_signalling_other_processes_is_refused() -> None:
    result = run_tests("", [f"import os, signal; os.kill({os.getpid()}, signal.SIGTERM)"])
    assert result.tests[0].error_type == "PermissionError"


# --- output, clean-up, isolation, parallel runs --------------------------------------------


def test_output_is_captured_and_truncated() -> None:
    limits = SandboxLimits(max_output_bytes=100)
    result = run_tests(
        "print('loaded')",
        ["print('x' * 100_000)", "import sys; sys.stderr.write('e' * 500)"],
        limits=limits,
    )

    assert result.stdout.startswith("loaded\nxxx")
    assert "[... output truncated:" in result.stdout
    assert result.stdout.count("x") <= 100
    assert result.stderr == "e" * 100 + "\n[... output truncated: 500 bytes in total]"
    assert outcomes(result) == [TestOutcome.passed, TestOutcome.passed]


def test_work_directory_is_private_and_removed_afterwards() -> None:
    result = run_tests("import os\nprint(os.getcwd())\nopen('scratch.txt', 'w').write('x')", [])
    workdir = Path(result.stdout.strip())
    assert workdir.name.startswith("run-")
    assert not workdir.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="OS isolation needs root")
def test_root_gets_network_namespace_and_separate_uid() -> None:
    isolation = detect_isolation()
    assert isolation.network_namespace and isolation.separate_uid
    result = run_tests("import os\nprint(os.getuid())", [])
    assert int(result.stdout.strip()) >= 2_000_000


def test_run_many_keeps_the_order_of_jobs() -> None:
    jobs = [
        SandboxJob(
            code=f"import time\nN = {n}\ntime.sleep({0.3 if n % 2 == 0 else 0.0})",
            tests=[f"assert N == {n}"],
        )
        for n in range(6)
    ]
    results = run_many(jobs, workers=3)
    assert [r.tests[0].outcome for r in results] == [TestOutcome.passed] * 6
    assert run_many([]) == []
