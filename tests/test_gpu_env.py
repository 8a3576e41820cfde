"""The environment vLLM gets on a GPU run is written once, in ``course/vllm.env``.

``course.gpu_fixtures.VLLM_ENV`` reads it; ``tools/gpu_box/run_suite.sh`` sources it;
``tools/gpu_box/prepare.py`` prints it into the box's command line. Nothing else spells
those variables' values out.
"""
from __future__ import annotations

import subprocess

from course.gpu_fixtures import VLLM_ENV, VLLM_ENV_FILE, read_env_file
from course.labkit import REPO_ROOT

SCRIPTS = ["tools/gpu_box/run_suite.sh", "tools/gpu_box/background.sh", "tools/gpu_box/prepare.py",
           "tools/gpu_box/startup_profile.py", "tools/gpu_box/probe.py", "course/gpu_fixtures.py"]


def test_the_file_holds_the_offline_in_process_settings():
    assert VLLM_ENV_FILE == REPO_ROOT / "course" / "vllm.env"
    assert VLLM_ENV["HF_HUB_OFFLINE"] == "1" and VLLM_ENV["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    assert VLLM_ENV == read_env_file(VLLM_ENV_FILE)


def test_sourcing_the_file_in_bash_gives_the_same_values():
    keys = " ".join(f'"${k}"' for k in VLLM_ENV)
    out = subprocess.run(["bash", "-c", f"set -a; . '{VLLM_ENV_FILE}'; printf '%s\\n' {keys}"],
                         capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout
    assert out.splitlines() == list(VLLM_ENV.values())


def test_no_script_sets_those_variables_itself():
    for script in SCRIPTS:
        text = (REPO_ROOT / script).read_text()
        for key, value in VLLM_ENV.items():
            assert f"{key}={value}" not in text and f'"{key}": "{value}"' not in text, (
                f"{script} sets {key} itself; read or source course/vllm.env instead")


def test_run_suite_sources_the_file():
    assert ". course/vllm.env" in (REPO_ROOT / "tools/gpu_box/run_suite.sh").read_text()


def test_bad_lines_are_refused_with_the_line_number(tmp_path):
    import pytest

    bad = tmp_path / "x.env"
    bad.write_text("# ok\nA=1\nexport B=2\n")
    with pytest.raises(ValueError, match=r"x.env:3: expected KEY=VALUE"):
        read_env_file(bad)
