"""Hostile programs against the real sandbox: contained, reported, nothing left behind.

Each test runs as root and (in CI, from .ci/run) again as an unprivileged uid. Wrong code
(`add` that subtracts) must never score above its true pass rate on parent-decided tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from liftdspy.sandbox import SandboxLimits, SandboxResult, TestOutcome, Verdict, run_tests

REPO = Path(__file__).resolve().parents[1]
WRONG_ADD = "def add(a, b):\n    return a - b\n"
# add(a, 0) == a is the only test the wrong code truly passes: true pass rate 1/4.
ADD_TESTS = ["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(5, 0) == 5",
             "assert add(-1, -1) == -2"]  # fmt: skip
TRUE_RATE = 0.25


def outcomes(result: SandboxResult) -> list[TestOutcome]:
    return [test.outcome for test in result.tests]


def assert_honest(result: SandboxResult) -> None:
    assert [t.verdict for t in result.tests] == [Verdict.parent] * len(ADD_TESTS)
    assert result.pass_rate <= TRUE_RATE, [t.model_dump() for t in result.tests]


# --- processes, threads, signals -----------------------------------------------------------


def test_fork_bomb_and_thread_bomb_are_refused_by_the_kernel() -> None:
    tests = [
        "import os\nwhile True: os.fork()",
        "import threading, time\n"
        "while True: threading.Thread(target=time.sleep, args=(60,)).start()",
        "import subprocess; subprocess.run(['/bin/true'])",
        # no audit event for this one: only the kernel can stop it
        "import _posixsubprocess, os\nr, w = os.pipe()\n"
        "_posixsubprocess.fork_exec([b'/bin/true'], [b'/bin/true'], True, (), None, None,"
        " -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, -1, -1, None, False)",
    ]
    result = run_tests("", tests, limits=SandboxLimits(timeout_s=20))
    assert outcomes(result) == [TestOutcome.error] * 4
    assert result.tests[0].error_type == "BlockingIOError"
    assert result.tests[1].error_type == "RuntimeError"  # can't start new thread
    assert result.tests[3].error_type == "BlockingIOError"


def test_signalling_the_parent_and_other_processes_reaches_nobody() -> None:
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        code = (
            "import os, signal\n"
            f"for pid in ({os.getpid()}, {victim.pid}, os.getppid()):\n"
            "    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass\n"
            "print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"
        )
        result = run_tests(code, [])
        time.sleep(0.2)
        assert victim.poll() is None  # still running
    finally:
        victim.kill()
        victim.wait()
    visible = json.loads(result.stdout.strip().splitlines()[-1])
    assert max(visible) <= 3  # a pid namespace: only the sandbox itself


def test_ignoring_sigxcpu_still_ends_at_the_cpu_hard_limit() -> None:
    code = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\n"
    limits = SandboxLimits(timeout_s=60, test_timeout_s=60, cpu_s=1)
    result = run_tests(code, ["while True: pass"], limits=limits)
    assert outcomes(result) == [TestOutcome.timeout]
    assert "SIGKILL" in (result.tests[0].message or "")


def test_exec_of_a_setuid_binary_gains_nothing() -> None:
    setuid = next(
        (p for p in ("/usr/bin/su", "/usr/bin/passwd", "/bin/mount") if os.path.exists(p)), None
    )
    assert setuid is not None and os.stat(setuid).st_mode & 0o4000, "no setuid binary to try"
    # exec replaces the harness: if anything ran, it did so as our uid without privileges.
    code = f"import os\nos.execv({setuid!r}, [{setuid!r}, '--help'])"
    result = run_tests(code, ["assert True"])
    assert not result.loaded
    assert result.tests[0].outcome is not TestOutcome.passed


# --- files -----------------------------------------------------------------------------------


def test_writes_outside_the_work_dir_never_reach_the_host(tmp_path: Path) -> None:
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    os.chmod(tmp_path, 0o777)
    victim.chmod(0o666)
    escape = tmp_path / f"escape-{uuid.uuid4().hex}"
    home_file = Path.home() / f".liftdspy-escape-{uuid.uuid4().hex}"  # / is read-only too
    tests = [
        f"open({str(escape)!r}, 'w').write('x')",
        f"import os\nd = os.open({str(tmp_path)!r}, os.O_RDONLY)\n"
        f"os.close(os.open('via-dir-fd', os.O_WRONLY | os.O_CREAT, dir_fd=d))",
        f"import os\nopen('moved', 'w').write('x')\nos.rename('moved', {str(escape)!r})",
        f"import os; os.remove({str(victim)!r})",
        f"open({str(victim)!r}, 'w').write('gone')",
        f"open({str(home_file)!r}, 'w').write('x')",
        f"open({str(REPO / 'mlflow.db')!r}, 'a').write('x')",
        "open('inside.txt', 'w').write('ok'); assert open('inside.txt').read() == 'ok'",
    ]
    result = run_tests("", tests)
    assert outcomes(result) == [TestOutcome.error] * 7 + [TestOutcome.passed]
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert not home_file.exists()


def test_files_left_in_tmp_and_dev_shm_do_not_outlive_the_run() -> None:
    marker = f"liftdspy-left-{uuid.uuid4().hex}"
    code = (
        f"open('/tmp/{marker}', 'w').write('x')\nopen('/dev/shm/{marker}', 'w').write('x')\n"
        "import os\nprint(os.getcwd())"
    )
    first = run_tests(code, [])
    assert first.loaded, first.load_error
    assert not Path("/tmp", marker).exists() and not Path("/dev/shm", marker).exists()
    second = run_tests(
        f"import os\nprint(os.path.exists('/tmp/{marker}'), os.path.exists('/dev/shm/{marker}'))",
        [],
    )
    assert second.stdout.split() == ["False", "False"]


def test_the_project_datasets_recordings_and_home_are_not_readable() -> None:
    home_marker = Path.home() / f".liftdspy-marker-{uuid.uuid4().hex}"
    home_marker.write_text("private")
    targets = [
        str(next((REPO / "datasets" / "core").glob("*.jsonl"))),
        str(REPO / "cache"),
        str(REPO / "liftdspy" / "__init__.py"),
        sys.prefix,  # the virtualenv with site-packages
        str(home_marker),
    ]
    code = (
        "import os\n"
        + "".join(f"print(os.path.exists({t!r}))\n" for t in targets)
        + "print(sorted(os.listdir('/')))"
    )
    try:
        result = run_tests(code, [])
    finally:
        home_marker.unlink()
    lines = result.stdout.strip().splitlines()
    assert lines[: len(targets)] == ["False"] * len(targets), dict(
        zip(targets, lines, strict=False)
    )
    assert "work" not in lines[-1] and "etc" not in lines[-1]


# --- secrets and network -------------------------------------------------------------------


def test_a_secret_the_parent_was_started_with_is_not_readable(tmp_path: Path) -> None:
    # A real environment block: the parent process is *started* with the secret.
    secret = f"hunter2-{uuid.uuid4().hex}"
    script = tmp_path / "parent.py"
    script.write_text(
        "import json\nfrom liftdspy.sandbox import run_tests\n"
        "dump = '''import os\n"
        "print(dict(os.environ))\n"
        "for pid in [os.getppid(), 1] + [int(p) for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    try:\n"
        "        print(open(f'/proc/{pid}/environ', 'rb').read())\n"
        "    except OSError as exc:\n"
        "        print('refused', type(exc).__name__)\n'''\n"
        "result = run_tests(dump, [])\n"
        "print(json.dumps({'stdout': result.stdout, 'loaded': result.loaded}))\n"
    )
    env = {**os.environ, "LIFTDSPY_TEST_SECRET": secret, "PYTHONPATH": str(REPO)}
    completed = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["loaded"] and "PATH" in report["stdout"]  # the dump really ran
    assert secret not in completed.stdout


def test_connections_to_localhost_and_unix_sockets_fail(tmp_path: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    unix_path = tmp_path / "s.sock"
    unix_server = socket.socket(socket.AF_UNIX)
    unix_server.bind(str(unix_path))
    unix_server.listen()
    abstract = f"\0liftdspy-{uuid.uuid4().hex}"
    abstract_server = socket.socket(socket.AF_UNIX)
    abstract_server.bind(abstract)
    abstract_server.listen()
    os.chmod(tmp_path, 0o777)
    unix_path.chmod(0o777)
    try:
        result = run_tests(
            "",
            [
                f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)",
                "import urllib.request; urllib.request.urlopen('http://example.com', timeout=2)",
                f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({str(unix_path)!r})",
                f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({abstract!r})",
            ],
        )
        for listener in (server, unix_server, abstract_server):
            listener.setblocking(False)
            with pytest.raises(BlockingIOError):  # nothing was queued
                listener.accept()
    finally:
        server.close()
        unix_server.close()
        abstract_server.close()
    assert outcomes(result) == [TestOutcome.error] * 4


# --- forged verdicts ---------------------------------------------------------------------------


def test_patching_builtins_exec_and_eval_does_not_make_wrong_code_pass() -> None:
    code = WRONG_ADD + (
        "import builtins\n"
        "builtins.exec = lambda *a, **k: None\n"
        "builtins.eval = lambda *a, **k: 3\n"
        "builtins.compile = lambda *a, **k: None\n"
    )
    assert_honest(run_tests(code, ADD_TESTS))


def test_forged_result_lines_are_not_believed() -> None:
    forge = WRONG_ADD + (
        "import json, os, sys\n"
        "report = sys._getframe(1).f_locals['report']\n"
        "report({'event': 'loaded', 'ok': True, 'error': None})\n"
        "for i in range(4):\n"
        "    report({'event': 'start', 'index': i})\n"
        "    report({'event': 'test', 'index': i, 'outcome': 'passed', 'error_type': None,"
        " 'message': None, 'duration_s': 0.0})\n"
        "    report({'event': 'values', 'index': i, 'items': [{'value': 3}], 'duration_s': 0.0})\n"
        "report({'event': 'done'})\n"
        "for fd in range(3, 20):\n"
        "    try:\n"
        "        os.write(fd, b'{\"event\": \"done\"}\\n' + b'garbage\\n')\n"
        "    except OSError:\n"
        "        pass\n"
        "os._exit(0)\n"
    )
    result = run_tests(forge, ADD_TESTS)
    assert_honest(result)
    assert all(t.error_type == "SandboxCrash" for t in result.tests)


def test_malformed_records_are_a_crash_result_not_an_exception() -> None:
    code = (
        "import os, sys\nfd = sys._getframe(1).f_locals['out_fd']\n"
        'os.write(fd, b\'{"event": "loaded", "ok": "yes"}\\n\' + b\'x\' * 100000)\nos._exit(0)'
    )
    result = run_tests(code, ADD_TESTS)
    assert not result.loaded and result.pass_rate == 0.0
    assert "SandboxCrash" in (result.load_error or "")


def test_an_always_equal_return_value_fails() -> None:
    code = (
        "class Anything:\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = None\n"
        "class Int(int):\n    def __eq__(self, other):\n        return True\n"
        "def add(a, b):\n    return Anything() if a > 0 else Int(0)\n"
    )
    result = run_tests(code, ADD_TESTS)
    assert_honest(result)
    assert result.pass_rate == 0.0
    assert {t.error_type for t in result.tests} == {"NotPlainData"}


def test_rebinding_names_the_tests_use_does_not_make_wrong_code_pass() -> None:
    code = WRONG_ADD + (
        "import builtins\n"
        "class Anything:\n    def __eq__(self, other):\n        return True\n"
        "for name in ('len', 'sorted', 'list', 'set', 'int', 'abs'):\n"
        "    setattr(builtins, name, lambda *a, **k: Anything())\n"
    )
    tests = [
        "assert sorted([add(2, 1), add(1, 1)]) == [3, 2]",
        "assert len([add(1, 1)]) == 1",
        "assert abs(add(1, 2)) == 3",
        "assert list(range(add(2, 1))) == [0, 1, 2]",
    ]
    result = run_tests(code, tests)
    assert [t.verdict for t in result.tests] == [Verdict.parent] * 4
    assert result.passed == 0  # failed, or the harness it broke crashed: never passed


def test_flooding_stdout_and_the_result_channel_is_bounded() -> None:
    code = (
        WRONG_ADD + "import os, sys\nfd = sys._getframe(1).f_locals['out_fd']\n"
        "chunk = b'x' * 65536\n"
        "for _ in range(400):\n    os.write(fd, chunk)\n    os.write(1, chunk)\n"
    )
    started = time.monotonic()
    result = run_tests(code, ADD_TESTS, limits=SandboxLimits(timeout_s=30))
    assert time.monotonic() - started < 30
    assert len(result.stdout) < 10_000 and "[... output truncated" in result.stdout
    assert result.pass_rate == 0.0


# --- forged verdicts in tests of any shape (issue 20) ---------------------------------------

LIAR = (
    "class Anything:\n"
    "    def __eq__(self, other):\n        return True\n"
    "    __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __eq__\n"
    "    def __bool__(self):\n        return True\n"
    "    def __len__(self):\n        return 0\n"
    "    def __hash__(self):\n        return 0\n"
    "    def __contains__(self, item):\n        return True\n"
    "    def __iter__(self):\n        return iter(())\n"
    "    def __sub__(self, other):\n        return 0\n"
    "    __rsub__ = __add__ = __radd__ = __sub__\n"
    "    def __float__(self):\n        return 0.5\n"
    "    @property\n    def __class__(self):\n        return int\n"
    "class Nothing(Anything):\n    def __bool__(self):\n        return False\n"
)


def test_lying_objects_fail_tests_of_every_shape() -> None:
    code = LIAR + (
        "def add(a, b):\n    return Anything()\n"
        "def invalid(x):\n    return Nothing()\n"
        "def move(data):\n    data[:] = [Anything()] * len(data)\n"
    )
    tests = [
        "r = add(1, 2)\nassert r == 3",  # several statements
        "assert add(1, 1) == EXPECTED",  # the expectation from the setup
        "for i in range(3):\n    assert add(i, i) == 2 * i",  # a loop
        "def check(a, b):\n    assert add(a, b) == a + b\ncheck(1, 2)",  # assert in a helper
        "assert add(1, 2)",  # a truth test
        "assert not invalid('x')",
        "assert not any(invalid(a) for a in ['x', 'y'])",  # a lying __bool__ inside any()
        "assert all(add(x, 1) == y for x, y in [(1, 2), (2, 3)])",
        "assert add(1, 2) in [3]",
        "assert 0 < add(1, 2) <= 3",
        "assert isinstance(add(1, 2), int)",  # a lying __class__
        "import math\nassert math.isclose(add(0.2, 0.3), 0.5)",  # a lying __float__
        "assert abs(add(0.2, 0.3) - 0.5) < 1e-9",  # a lying __sub__
        "assert len(add(1, 2)) == 0 and add(1, 2) == 3",
        "data = [0, 1]\nmove(data)\nassert data == [1, 0]",  # a list the code changed
        "try:\n    add(1, 2) + 1\nexcept TypeError:\n    pass\nassert add(1, 2) != 4",
    ]
    result = run_tests(code, tests, setup="EXPECTED = 2")
    assert [t.verdict for t in result.tests] == [Verdict.parent] * len(tests), [
        t.verdict_reason for t in result.tests
    ]
    assert result.passed == 0, [(t.source, t.outcome) for t in result.tests]
    assert {t.error_type for t in result.tests} == {"NotPlainData"}


def test_a_lying_bool_cannot_steer_a_branch_of_the_test() -> None:
    code = LIAR + "def find(x):\n    return Nothing()\n"
    # Python would skip the assert when `r` is falsy: a lying __bool__ is refused, not believed.
    result = run_tests(code, ["r = find(1)\nif not r:\n    pass\nelse:\n    assert r == 1"])
    assert result.tests[0].outcome is not TestOutcome.passed
    assert result.tests[0].verdict is Verdict.in_sandbox  # counted: the branch is the sandbox's
    assert "NotPlainData" in (result.tests[0].message or "")


def test_reporting_checks_of_its_own_or_none_at_all_does_not_pass() -> None:
    # The code swaps the probe for one that reports nothing, or a fixed value, or exits early.
    silent = WRONG_ADD + (
        "import builtins\n"
        "def add(a, b):\n"
        "    import sys\n"
        "    ns = sys._getframe(1).f_globals\n"
        "    ns['__liftdspy_check__'] = lambda *a: None\n"
        "    return a - b\n"
    )
    tests = ["x = add(1, 2)\nassert x == 3", "assert add(2, 2) == 4", "assert add(5, 0) == 5",
             "assert add(-1, -1) == -2"]  # fmt: skip
    result = run_tests(silent, tests)
    assert result.pass_rate <= TRUE_RATE, [t.model_dump() for t in result.tests]
    fixed = WRONG_ADD + (
        "import sys\n"
        "def add(a, b):\n"
        "    ns = sys._getframe(1).f_globals\n"
        "    real = ns['__liftdspy_check__']\n"
        "    ns['__liftdspy_check__'] = lambda k, *thunks: real(k, *[lambda: 3 for _ in thunks])\n"
        "    return a - b\n"
    )
    assert_honest(run_tests(fixed, ADD_TESTS))
    early = WRONG_ADD + "import os\ndef add(a, b):\n    os._exit(0)\n"
    result = run_tests(early, ["x = add(1, 2)\nassert x == 3"])
    assert result.passed == 0


def test_a_raising_eq_hash_or_len_never_runs_in_the_parent() -> None:
    code = (
        "class Bomb:\n"
        "    def __eq__(self, other):\n        raise SystemExit('eq')\n"
        "    def __hash__(self):\n        raise SystemExit('hash')\n"
        "    def __len__(self):\n        raise SystemExit('len')\n"
        "    def __bool__(self):\n        raise SystemExit('bool')\n"
        "def make():\n    return Bomb()\n"
        "def nested():\n    return {'k': [Bomb()]}\n"
    )
    tests = ["assert make() == 1", "assert make()", "assert nested() == {'k': [1]}",
             "r = {make(): 1}\nassert r"]  # fmt: skip
    result = run_tests(code, tests)
    assert result.passed == 0
    assert [t.outcome for t in result.tests] == [TestOutcome.failed] * 3 + [TestOutcome.error]


def test_subclasses_recursive_and_huge_values_fail_and_stdlib_values_pass() -> None:
    code = (
        "import collections, decimal, fractions, datetime\n"
        "class MyCounter(collections.Counter):\n"
        "    def __eq__(self, other):\n        return True\n"
        "class Point(collections.namedtuple('Point', 'x y')):\n    pass\n"
        "def counter(s):\n    return collections.Counter(s)\n"
        "def my_counter(s):\n    return MyCounter(s)\n"
        "def point():\n    return Point(1, 2)\n"
        "def plain_point():\n    return collections.namedtuple('Point', 'x y')(1, 2)\n"
        "def loop():\n    x = []\n    x.append(x)\n    return x\n"
        "def huge_list():\n    return list(range(300_000))\n"
        "def huge_int():\n    return 10 ** 6000\n"
        "def huge_str():\n    return 'x' * 3_000_000\n"
        "def money():\n    return decimal.Decimal('0.10') + decimal.Decimal('0.20')\n"
        "def day():\n    return datetime.date(2024, 1, 1) + datetime.timedelta(days=1)\n"
    )
    tests = [
        "assert counter('aab') == {'a': 2, 'b': 1}",  # Counter == dict, as in Python
        "assert my_counter('aab') == {'a': 2, 'b': 1}",
        "assert point() == (1, 2)",  # a subclass of a named tuple
        "assert plain_point() == (1, 2) and plain_point().x == 1",
        "assert loop() == [[]]",
        "assert huge_list() == []",
        "assert huge_int() == 1",
        "assert huge_str() == ''",
        "from decimal import Decimal\nassert money() == Decimal('0.3')",
        "import datetime\nassert day() == datetime.date(2024, 1, 2)",
    ]
    result = run_tests(code, tests, limits=SandboxLimits(timeout_s=30, test_timeout_s=10))
    assert outcomes(result) == [
        TestOutcome.passed, TestOutcome.failed, TestOutcome.failed, TestOutcome.passed,
        TestOutcome.failed, TestOutcome.failed, TestOutcome.failed, TestOutcome.failed,
        TestOutcome.passed, TestOutcome.passed,
    ], [(t.source, t.outcome, t.message) for t in result.tests]  # fmt: skip
    assert {result.tests[i].error_type for i in (1, 2, 4, 5, 6, 7)} == {"NotPlainData"}


def test_expected_values_of_the_setup_and_the_test_are_out_of_the_codes_reach() -> None:
    # The code reads the expectation where the test keeps it, or rebinds it before it is read.
    code = (
        "import sys\n"
        "def peek(a):\n"
        "    frame = sys._getframe(1)\n"
        "    for scope in (frame.f_globals, frame.f_locals):\n"
        "        for name in ('EXPECTED', 'expected', 'odd_sum'):\n"
        "            if name in scope:\n"
        "                return scope[name]\n"
        "    return None\n"
        "def rebind(a):\n"
        "    sys._getframe(1).f_globals['EXPECTED'] = 'forged'\n"
        "    sys._getframe(1).f_globals['expected'] = 'forged'\n"
        "    return 'forged'\n"
    )
    tests = [
        "assert peek(1) == EXPECTED",
        "expected = [4, 2]\nassert peek(1) == expected",
        "odd_sum = sum([i ** 2 for i in range(5) if i % 2])\nassert peek(1) == odd_sum",
        "assert rebind(1) == EXPECTED",
        "expected = 7\nassert rebind(1) == expected",
    ]
    result = run_tests(code, tests, setup="EXPECTED = [1, 2, 3]")
    assert [t.verdict for t in result.tests] == [Verdict.parent] * len(tests)
    assert result.passed == 0, [(t.source, t.outcome, t.message) for t in result.tests]


def test_a_patched_stdlib_class_neither_builds_the_expectation_nor_passes_as_one() -> None:
    # The code replaces datetime.date before the setup imports it: `date(...)` in the test
    # would build the code's object on both sides of `==`.
    code = (
        "import datetime\n"
        "class FakeDate:\n"
        "    year, month, day = 2000, 1, 1\n"
        "    def __init__(self, *a):\n        pass\n"
        "datetime.date = FakeDate\n"
        "def next_day(d):\n    return FakeDate()\n"
    )
    tests = ["assert next_day(date(2024, 1, 1)) == date(2024, 1, 2)"]
    result = run_tests(code, tests, setup="from datetime import date")
    assert result.tests[0].verdict is Verdict.parent
    assert result.tests[0].outcome is TestOutcome.failed
    assert result.tests[0].error_type == "NotPlainData"


def test_rebinding_a_loop_variable_does_not_forge_the_expected_value() -> None:
    # `str(x)` would be read after the call: the code sets x so that its answer matches.
    code = (
        "import sys\n"
        "def change_base(a, b):\n"
        "    sys._getframe(1).f_globals['x'] = 0\n"
        "    return '0'\n"
    )
    tests = ["for x in range(2, 8):\n    assert change_base(x, x + 1) == str(x)"]
    result = run_tests(code, tests)
    assert result.tests[0].verdict is Verdict.parent
    assert result.tests[0].outcome is TestOutcome.failed, result.tests[0]
