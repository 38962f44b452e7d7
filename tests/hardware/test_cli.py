"""`welfare hardware ...` subcommands, run through their own argparse registration."""

from __future__ import annotations

import argparse
import base64
from pathlib import Path

import pytest

from hardware.cli import register


def run(*argv: str) -> int:
    """Parse `argv` as `welfare` would and run the handler."""
    parser = argparse.ArgumentParser(prog="welfare")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    result: int = args.handler(args)
    return result


def test_test_print_writes_escpos_bytes(tmp_path: Path) -> None:
    """A sample ticket and slip on the dummy printer are written out as ESC/POS."""
    out = tmp_path / "sample.bin"
    assert run("hardware", "test-print", "--out", str(out)) == 0
    data = out.read_bytes()
    assert data.startswith(b"\x1b@")
    assert data.count(b"\x1dV\x00") == 2  # two documents, two cuts
    assert b"V-TEST-00000000-0001" in data


def test_face_key_prints_a_fresh_aes_key(capsys: pytest.CaptureFixture[str]) -> None:
    """Each call prints a new 32-byte key in urlsafe base64."""
    run("hardware", "face-key")
    run("hardware", "face-key")
    first, second = capsys.readouterr().out.split()
    assert len(base64.urlsafe_b64decode(first)) == 32
    assert first != second


def test_bench_face_prints_a_row_per_size(capsys: pytest.CaptureFixture[str]) -> None:
    """The benchmark prints match times for each size and finds every probe's owner."""
    assert run("hardware", "bench-face", "--sizes", "20", "200", "--probes", "10") == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.strip().split()[0].isdigit()]
    assert [r[0] for r in rows] == ["20", "200"]
    assert all(r[-1] == "10/10" for r in rows)
