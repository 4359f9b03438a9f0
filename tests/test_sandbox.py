"""The sandbox runs real bubblewrap sandboxes: normal outcomes, limits, isolation report."""

from __future__ import annotations

import os

import pytest

from liftdspy.sandbox import (
    LocalBackend,
    SandboxJob,
    SandboxLimits,
    SandboxResult,
    TestOutcome,
    Verdict,
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

    assert result.loaded and result.load_error is None and result.isolation == "bubblewrap"
    assert outcomes(result) == [TestOutcome.passed, TestOutcome.failed, TestOutcome.error]
    assert (result.passed, result.total, result.pass_rate) == (1, 3, pytest.approx(1 / 3))
    failed, error = result.tests[1], result.tests[2]
    assert failed.error_type == "AssertionError"
    assert failed.message == "assert add(1, 1) == 3 (left: 2, right: 3)"
    assert error.error_type == "TypeError" and "NoneType" in (error.message or "")
    assert [t.verdict for t in result.tests] == [Verdict.parent] * 3


def test_split_tests_cover_chains_bool_ops_membership_and_singletons() -> None:
    code = ADD + "def nothing():\n    return None\n"
    tests = [
        "assert 0 < add(1, 2) <= 3",
        "assert add(1, 1) == 2 and not add(2, 2) == 5",
        "assert add(1, 1) in {2, 3}",
        "assert nothing() is None",
        "assert add([1], [2]) == [1, 2]",
        "assert add((1,), (2,)) == (1, 2)",
        "assert add(b'a', b'b') == b'ab'",
        "assert add(1, 1) == 3 or add(1, 2) == 3",
        "assert add(0.1, 0.2) != 0.3",
        "assert add(1, 1) == 3, 'custom message'",
    ]
    result = run_tests(code, tests)
    assert [t.verdict for t in result.tests] == [Verdict.parent] * len(tests)
    assert outcomes(result) == [TestOutcome.passed] * 9 + [TestOutcome.failed]
    assert result.tests[-1].message == "custom message"


def test_comparing_incomparable_plain_values_is_an_error() -> None:
    result = run_tests(ADD, ["assert add([1], [2]) < 3"])
    assert outcomes(result) == [TestOutcome.error]
    assert result.tests[0].error_type == "TypeError"


def test_every_shape_of_test_is_decided_in_the_parent_but_identity() -> None:
    tests = [
        "x = add(1, 2); assert x == 3",
        "assert add(1, 2)",  # a truth test of a plain value, made here
        "for i in range(3):\n    assert add(i, i) == 2 * i",
        "assert add(1, 2) is add(1, 2)",  # copies have no identity: decided inside, and said so
        "assert (n := add(1, 1)) == 2\nassert n == 2",  # `:=` binds for what follows
    ]
    result = run_tests(ADD, tests)
    assert outcomes(result) == [TestOutcome.passed] * 5
    assert [t.verdict for t in result.tests] == [Verdict.parent] * 3 + [Verdict.in_sandbox] * 2
    assert "identity" in (result.tests[3].verdict_reason or "")
    assert ":=" in (result.tests[4].verdict_reason or "")
    assert result.in_sandbox_verdicts == 2


def test_assertion_message_in_an_in_sandbox_test_is_kept() -> None:
    result = run_tests(ADD, ["x = add(1, 1); assert x == 3, 'one plus one'"])
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


def test_an_expectation_from_the_setup_is_compared_in_the_parent() -> None:
    # EXPECTED comes back as plain data like add(1, 1); the comparison is made here.
    result = run_tests(
        ADD, ["assert add(1, 1) == EXPECTED", "assert add(1, 2) == EXPECTED"], setup="EXPECTED = 2"
    )
    assert outcomes(result) == [TestOutcome.passed, TestOutcome.failed]
    assert [t.verdict for t in result.tests] == [Verdict.parent] * 2


def test_no_tests_means_pass_rate_zero() -> None:
    result = run_tests(ADD, [])
    assert result.loaded and result.total == 0 and result.pass_rate == 0.0


def test_sys_exit_in_a_test_is_an_error_and_later_tests_still_run() -> None:
    result = run_tests(ADD, ["import sys; sys.exit(3)", "assert add(1, 2) == 3"])
    assert outcomes(result) == [TestOutcome.error, TestOutcome.passed]
    assert result.tests[0].error_type == "SystemExit"


def test_hard_exit_reports_the_unfinished_tests() -> None:
    result = run_tests(ADD, ["import os; os._exit(0)", "assert add(1, 1) == 2"])
    assert result.loaded
    assert outcomes(result) == [TestOutcome.error, TestOutcome.error]
    assert result.tests[0].error_type == "SandboxCrash"
    assert (result.tests[1].message or "").startswith("not run")


# --- time, CPU and memory ----------------------------------------------------------------------


def test_infinite_loop_in_a_test_times_out_and_the_next_test_runs() -> None:
    code = ADD + "def spin():\n    while True:\n        pass\n"
    result = run_tests(code, ["while True: pass", "assert spin() == 1", "assert add(1, 2) == 3"],
                       limits=FAST)  # fmt: skip
    assert outcomes(result) == [TestOutcome.timeout, TestOutcome.timeout, TestOutcome.passed]
    assert not result.timed_out
    assert 0.9 <= result.tests[0].duration_s < 3.0


def test_program_that_ignores_the_test_alarm_is_killed_by_the_wall_clock() -> None:
    stubborn = "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True: pass"
    limits = SandboxLimits(timeout_s=2.0, test_timeout_s=0.5, cpu_s=30)
    result = run_tests(ADD, [stubborn, "assert add(1, 1) == 2"], limits=limits)

    assert result.timed_out
    assert outcomes(result) == [TestOutcome.timeout, TestOutcome.timeout]
    assert (result.tests[1].message or "").startswith("not run")
    assert result.duration_s < 6.0


def test_infinite_loop_at_top_level_is_a_timed_out_load() -> None:
    result = run_tests("while True: pass", ["assert True"], limits=SandboxLimits(timeout_s=1.5))
    assert result.timed_out and not result.loaded
    assert (result.load_error or "").startswith("Timeout")


def test_cpu_limit_stops_a_busy_program() -> None:
    # A generous wall clock: on a loaded machine 1 s of CPU can take many seconds.
    limits = SandboxLimits(timeout_s=60.0, test_timeout_s=60.0, cpu_s=1)
    result = run_tests(ADD, ["while True: pass"], limits=limits)
    assert outcomes(result) == [TestOutcome.timeout]
    assert "CPU" in (result.tests[0].message or "")  # the CPU limit, not the wall clock


def test_memory_bomb_raises_memory_error_and_the_process_survives() -> None:
    bomb = "blocks = []\nwhile True: blocks.append(bytearray(50 * 1024 * 1024))"
    limits = SandboxLimits(memory_mb=256, timeout_s=10.0, test_timeout_s=5.0)
    result = run_tests(ADD, [bomb, "blocks = None", "assert add(1, 2) == 3"], limits=limits)
    assert outcomes(result) == [TestOutcome.error, TestOutcome.passed, TestOutcome.passed]
    assert result.tests[0].error_type == "MemoryError"


# --- output, isolation report, parallel runs ---------------------------------------------------


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


def test_isolation_report_lists_every_layer_in_force() -> None:
    isolation = detect_isolation()
    assert isolation.available, isolation.missing
    layers = {layer.name: layer for layer in isolation.layers}
    expected = {
        "separate uid", "mount namespace", "private tmpfs",
        "network namespace", "pid namespace", "no new privileges", "capabilities dropped",
        "seccomp", "rlimits",
    }  # fmt: skip
    # bubblewrap as root, setpriv dropping the uid inside; otherwise a user namespace
    expected.add("privilege drop" if isolation.root_setup == "bwrap-as-root" else "user namespace")
    assert set(layers) == expected
    assert all(layer.in_force for layer in isolation.layers), isolation.missing
    assert isolation.as_root == (os.geteuid() == 0)


def test_the_sandbox_sees_its_own_uid_no_caps_and_no_new_privs() -> None:
    probe = (
        "import os\n"
        "status = open('/proc/self/status').read()\n"
        "print(os.getuid(), 'NoNewPrivs:\\t1' in status, 'CapEff:\\t0000000000000000' in status,"
        " 'Seccomp:\\t2' in status)"
    )
    result = run_tests(probe, [])
    uid, *flags = result.stdout.split()
    assert flags == ["True", "True", "True"]
    # in a user namespace the uid is seen as 1000; bubblewrap as root: the unused host uid
    if detect_isolation().root_setup == "bwrap-as-root":
        assert int(uid) >= 2_000_000_000
    else:
        assert int(uid) == 1000


def test_run_many_keeps_the_order_of_jobs() -> None:
    jobs = [
        SandboxJob(
            code=f"import time\nN = {n}\ntime.sleep({0.3 if n % 2 == 0 else 0.0})\n"
            "def n():\n    return N\n",
            tests=[f"assert n() == {n}"],
        )
        for n in range(6)
    ]
    results = run_many(jobs, workers=3)
    assert [r.tests[0].outcome for r in results] == [TestOutcome.passed] * 6
    assert run_many([]) == []


def test_unsafe_backend_runs_without_isolation_and_says_so() -> None:
    result = run_tests(ADD, ["assert add(1, 2) == 3"], backend=LocalBackend("none"))
    assert result.isolation == "none" and result.unsafe
    assert outcomes(result) == [TestOutcome.passed]


def test_names_one_test_binds_stay_bound_for_the_next() -> None:
    # Tests share one namespace (a tests file's statements are tests of their own).
    tests = ["EXPECTED = 3", "assert add(1, 2) == EXPECTED", "for x in [1, 2]:\n    pass",
             "for y in [4]:\n    assert add(y, 0) == y\nassert x == 2 and y == 4"]  # fmt: skip
    result = run_tests(ADD, tests)
    assert outcomes(result) == [TestOutcome.passed] * 4, [t.message for t in result.tests]
