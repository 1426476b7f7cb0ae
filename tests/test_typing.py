"""configure() is typed: the wheel ships py.typed, and a type checker completes and checks its keywords."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import get_type_hints

from avalo_otel.options import INTERNAL_SETTINGS, Options
from avalo_otel.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_a_typed_keyword_of_configure():
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert set(get_type_hints(Options)) == fields - INTERNAL_SETTINGS


def test_a_type_checker_reads_the_installed_package_and_catches_bad_keywords(tmp_path: Path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(wheels.glob("avalo_otel-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        assert "avalo_otel/py.typed" in archive.namelist()  # PEP 561: the package says it is typed
        archive.extractall(site)
    app = tmp_path / "user_app.py"
    app.write_text(textwrap.dedent("""\
        import avalo_otel

        handle = avalo_otel.configure(service_name="chat-api", traces_exporters="otlp,sqlite", sampling_rate=0.1)
        avalo_otel.configure(sampling_rat=0.1)
        avalo_otel.configure(prometheus_port="9464")
        avalo_otel.configure(preset="datadgo")
        ok: bool = handle.force_flush(timeout_s=2.5)
    """))
    proc = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-incremental",
                           "--cache-dir", str(tmp_path / "cache"), str(app)],
                          env={"MYPYPATH": str(site), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=300)
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert [int(line.split(":")[1]) for line in errors] == [4, 5, 6], proc.stdout
    assert 'did you mean "sampling_rate"' in errors[0]
    assert 'expected "int"' in errors[1] and "Literal['none', 'datadog', 'newrelic']" in errors[2]
