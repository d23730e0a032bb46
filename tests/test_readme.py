"""The README's Python example runs as written and prints what it promises."""

import contextlib
import io
import pathlib
import re


def run_readme_block(after: str) -> str:
    """Run the first python block of the README that follows the text `after`; return its output."""
    text = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    code = re.search(re.escape(after) + r".*?```python\n(.*?)```", text, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    return out.getvalue()


def test_readme_python_example_runs():
    assert run_readme_block("## Using the core from Python").strip() == "b'HELLO'"


def test_readme_asyncio_example_runs():
    assert run_readme_block("## asyncio streams").strip() == "b'HELLO'"


def test_readme_blocking_socket_example_runs():
    assert run_readme_block("For scripts, a blocking socket-like API").startswith("b'ping' ('192.0.2.1', ")


def test_readme_unchanged_asyncio_example_prints_what_it_says():
    """The sample's comments are its output: the same on every run (a seeded network, virtual time)."""
    text = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"## Unchanged asyncio programs.*?```python\n(.*?)```", text, re.S).group(1)
    promised = [line.split("  # ")[-1].strip() for line in block.splitlines() if "print(" in line]
    out = run_readme_block("## Unchanged asyncio programs").strip().splitlines()
    assert out == promised and len(out) == 2


def test_package_exposes_the_streams_api_at_top_level():
    import tcpwave
    from tcpwave.aio import open_connection, start_server

    assert tcpwave.open_connection is open_connection and tcpwave.start_server is start_server


def test_readme_names_both_setup_commands_and_ci_calls_the_test_one():
    root = pathlib.Path(__file__).parent.parent
    text = (root / "README.md").read_text()
    assert "./run demo" in text and "./run test" in text
    assert "./run test" in (root / ".ci" / "run").read_text()


def test_readme_demo_sample_is_the_output_of_a_real_run(capsys):
    """The `./run demo` sample is exactly what `tcpwave demo` prints (TCPWAVE_UPDATE_README=1 rewrites it)."""
    import os

    from tcpwave.cli.main import main

    path = pathlib.Path(__file__).parent.parent / "README.md"
    text = path.read_text()
    block = re.search(r"```\n\$ \./run demo\n(.*?)```", text, re.S)
    assert main(["demo", "--color", "never"]) == 0
    out = capsys.readouterr().out
    if os.environ.get("TCPWAVE_UPDATE_README"):
        path.write_text(text[: block.start(1)] + out + text[block.end(1):])
        return
    assert block.group(1) == out, "README's demo sample is stale; rerun with TCPWAVE_UPDATE_README=1"


def test_readme_socket_api_example_runs():
    assert run_readme_block("## The socket module's API, blocking") == "line one\n1 18\n"


def _readme_block(after: str, fence: str = "python") -> str:
    text = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    return re.search(re.escape(after) + r".*?```" + fence + r"\n(.*?)```", text, re.S).group(1)


def test_readme_plugin_example_passes_and_its_failure_sample_is_real(tmp_path):
    """The README's test file passes under the plugin; with the bug the README describes, pytest ends
    with exactly the line the README shows."""
    import os
    import subprocess
    import sys

    code = _readme_block("## Testing an asyncio app under loss")
    (tmp_path / "test_shout.py").write_text(code)
    run = [sys.executable, "-m", "pytest", "test_shout.py", "-p", "no:cacheprovider", "--tcpwave-pcap-dir", "pcaps"]
    # without CI=true: in CI pytest does not truncate assertion output, and its full diff of two
    # 600 KB byte strings (the failing run below) takes minutes
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    ok = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "data.upper()" in code
    (tmp_path / "test_shout.py").write_text(code.replace("data.upper()", "data"))
    failed = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert failed.returncode == 1
    shown = _readme_block("forgotten `.upper()`", "").strip()
    assert shown in failed.stdout.splitlines(), failed.stdout
    assert (tmp_path / "pcaps" / "test_shout.py_test_shout_under_loss.pcap").is_file()


def test_readme_demo_command_samples_are_the_output_of_real_runs(capsys):
    """Every "$ ./run tcpwave demo ARGS [| tail -N]" block is what that command prints
    (TCPWAVE_UPDATE_README=1 rewrites them)."""
    import os

    from tcpwave.cli.main import main

    path = pathlib.Path(__file__).parent.parent / "README.md"
    text = path.read_text()
    blocks = list(re.finditer(r"```\n\$ \./run tcpwave (demo [^|\n]*?)(?: \| tail -(\d+))?\n(.*?)```", text, re.S))
    assert len(blocks) >= 2
    for block in reversed(blocks):  # from the end, so that rewriting keeps earlier offsets
        main([*block.group(1).split(), "--color", "never"])
        out = capsys.readouterr().out
        if block.group(2):
            out = "".join(out.splitlines(keepends=True)[-int(block.group(2)):])
        if os.environ.get("TCPWAVE_UPDATE_README"):
            text = text[: block.start(3)] + out + text[block.end(3):]
        else:
            assert block.group(3) == out, f"README's sample of {block.group(1)!r} is stale; rerun with " \
                                          "TCPWAVE_UPDATE_README=1"
    if os.environ.get("TCPWAVE_UPDATE_README"):
        path.write_text(text)
