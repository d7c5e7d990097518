"""tools/ensure_chromium.sh, which `make test` runs so the browser tests have Debian's
Chromium: run with fake `id`, `sudo` and `apt-get` on an otherwise empty PATH."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "tools" / "ensure_chromium.sh"


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)


def _run(tmp_path: Path, *, uid: int, sudo: bool,
         apt_fails_before_update: bool = False) -> tuple[subprocess.CompletedProcess[str],
                                                         Path, list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    chromium = tmp_path / "chromium"
    calls = tmp_path / "calls"
    _fake(bin_dir, "id", f"echo {uid}")
    if sudo:
        _fake(bin_dir, "sudo", f'echo "sudo $*" >> {calls}\n'
                               '[ "$1" = -n ] && shift\n[ "$1" = true ] && exit 0\nexec "$@"')
    marker = tmp_path / "updated"
    fail = f"[ -e {marker} ] || exit 100\n" if apt_fails_before_update else ""
    _fake(bin_dir, "apt-get", f'echo "apt-get $*" >> {calls}\n'
                              f'if [ "$1" = update ]; then : > {marker}; exit 0; fi\n{fail}'
                              f'printf "#!/bin/sh\\n" > {chromium}; /bin/chmod +x {chromium}')
    result = subprocess.run(["/bin/sh", str(SCRIPT)], capture_output=True, text=True,
                            env={"PATH": str(bin_dir), "LASTKNOWN_CHROMIUM": str(chromium)},
                            check=False)
    made = calls.read_text(encoding="utf-8").splitlines() if calls.exists() else []
    return result, chromium, made


def test_present_chromium_installs_nothing(tmp_path: Path) -> None:
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n", encoding="utf-8")
    chromium.chmod(0o755)
    result = subprocess.run(["/bin/sh", str(SCRIPT)], capture_output=True, text=True,
                            env={"PATH": str(tmp_path / "none"),
                                 "LASTKNOWN_CHROMIUM": str(chromium)}, check=False)
    assert result.returncode == 0, result.stderr


def test_root_installs_with_apt_get(tmp_path: Path) -> None:
    result, chromium, calls = _run(tmp_path, uid=0, sudo=False)
    assert result.returncode == 0, result.stderr
    assert chromium.exists()
    assert calls == ["apt-get install -y -q chromium"]


def test_root_updates_the_package_lists_when_install_fails(tmp_path: Path) -> None:
    result, chromium, calls = _run(tmp_path, uid=0, sudo=False, apt_fails_before_update=True)
    assert result.returncode == 0, result.stderr
    assert chromium.exists()
    assert calls == ["apt-get install -y -q chromium", "apt-get update -q",
                     "apt-get install -y -q chromium"]


def test_other_users_install_through_sudo(tmp_path: Path) -> None:
    result, chromium, calls = _run(tmp_path, uid=1000, sudo=True)
    assert result.returncode == 0, result.stderr
    assert chromium.exists()
    assert "sudo -n apt-get install -y -q chromium" in calls


def test_without_root_or_sudo_it_says_what_to_do(tmp_path: Path) -> None:
    result, chromium, calls = _run(tmp_path, uid=1000, sudo=False)
    assert result.returncode == 1
    assert "apt-get install -y chromium" in result.stderr
    assert not chromium.exists() and calls == []
