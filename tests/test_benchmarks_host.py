"""benchmarks/host.py: the CPU a figure was measured on, read from /proc/cpuinfo's first processor."""

from __future__ import annotations

from benchmarks.host import cpu_description, describe, host_description

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16

processor\t: 1
model name\t: some other name
flags\t\t: amx_tile
"""


def test_the_first_processor_names_the_model_and_the_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(ZEN4)
    cpu = cpu_description(cpuinfo)
    assert cpu["model"] == "AMD EPYC 9R14 96-Core Processor"
    assert cpu["flags"] == {"AMX": False, "AVX512-BF16": True, "VNNI": True, "AVX-512": True, "AVX2": True,
                            "FMA": True}


def test_a_cpu_without_flags_says_so(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some ARM core\n")
    cpu = cpu_description(cpuinfo)
    assert cpu["flags"] is None
    assert "flags unknown" in describe({"cpu": cpu, "torch": "2.0", "threads": 2, "OMP_WAIT_POLICY": None})


def test_the_host_line_names_torch_and_threads(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    host = host_description()
    line = describe(host)
    assert f"torch {host['torch']}, {host['threads']} threads, OMP_WAIT_POLICY=PASSIVE" in line
