"""`[service]` in lastknown.toml, `lastknown serve` and its demo deployment."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi import APIRouter, FastAPI

from lastknown.cli import cli
from lastknown.config import load_deployment
from lastknown.errors import ConfigError
from lastknown.service import db as t
from lastknown.service.db import open_app_db
from lastknown.service.demo import DEMO_PASSWORD, DEMO_USERS, login_help
from lastknown.service.roles import unguarded
from lastknown.service.serve import prepare
from lastknown.service.settings import ServiceSettings


def deployment_with(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lastknown.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_service_table_is_read_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    path = deployment_with(tmp_path, 'archive = "ar"\n[service]\napp_db = "db/app.sqlite"\n'
                                     "secure_cookies = false\nsession_hours = 2\n")
    settings = ServiceSettings.from_deployment(load_deployment(path))
    assert settings.app_db == str(tmp_path / "db" / "app.sqlite")
    assert (settings.secure_cookies, settings.session_hours, settings.upload_limit_mb) == (
        False, 2, 200)
    flagged = ServiceSettings.from_deployment(load_deployment(path), app_db="sqlite:///x.db")
    assert flagged.app_db == "sqlite:///x.db"


def test_default_app_db_sits_beside_the_archive(tmp_path: Path) -> None:
    path = deployment_with(tmp_path, 'archive = "data/archive"\n')
    settings = ServiceSettings.from_deployment(load_deployment(path))
    assert settings.app_db == str(tmp_path / "data" / "service.sqlite")
    assert settings.secure_cookies is True and settings.password_cost == "standard"


@pytest.mark.parametrize(("text", "message"), [
    ('[service]\napp_dbb = "x"\n', "unknown key `app_dbb` in [service]"),
    ("[service]\nsession_hours = 0\n", "`session_hours` must be a positive integer"),
    ('[service]\nsecure_cookies = "no"\n', "`secure_cookies` must be a bool"),
])
def test_service_table_mistakes_are_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ServiceSettings.from_deployment(load_deployment(deployment_with(tmp_path, text)))


@pytest.mark.parametrize(("text", "message"), [
    ('service = "x"\n', "must be a table"),
    ('servce = "x"\n', "unknown key `servce`"),
])
def test_deployment_file_keeps_unknown_keys_an_error(tmp_path: Path, text: str,
                                                     message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_deployment(deployment_with(tmp_path, text))


def test_demo_seeds_a_private_folder_once(_private_user_dirs_per_test: Path) -> None:
    settings, folder = prepare(None, demo=True, host="127.0.0.1", app_db=None)
    assert folder is not None and folder.is_relative_to(_private_user_dirs_per_test / "data")
    assert (settings.demo, settings.secure_cookies) == (True, False)
    assert Path(settings.deployment.ledger).is_file() and settings.deployment.archive.is_dir()
    prepare(None, demo=True, host="localhost", app_db=None)  # again: nothing doubled
    db = open_app_db(settings.app_db)
    with db.begin() as conn:
        users = conn.execute(sa.select(t.users.c.username, t.users.c.role)).all()
        agencies = conn.execute(sa.select(sa.func.count()).select_from(t.agencies)).scalar()
    db.close()
    assert sorted(users) == sorted((u.username, u.role.value) for u in DEMO_USERS)
    assert agencies == 2
    assert not (Path.cwd() / "service-demo").exists()


def test_demo_listens_only_on_loopback() -> None:
    with pytest.raises(ConfigError, match="only on this machine"):
        prepare(None, demo=True, host="0.0.0.0", app_db=None)
    result = CliRunner().invoke(cli, ["serve", "--demo", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "only on this machine" in result.output


def test_serve_demo_says_how_to_sign_in(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[tuple[ServiceSettings, str, int]] = []
    monkeypatch.setattr("lastknown.service.serve.run",
                        lambda s, host, port: served.append((s, host, port)))
    result = CliRunner().invoke(cli, ["serve", "--demo", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8123/login" in result.stdout and DEMO_PASSWORD in result.stdout
    assert all(u.username in result.stdout for u in DEMO_USERS)
    assert served and served[0][1:] == ("127.0.0.1", 8123) and served[0][0].demo
    assert login_help("http://x", Path("/f")).startswith("Demo deployment in /f")


def test_serve_uses_the_deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[ServiceSettings] = []
    monkeypatch.setattr("lastknown.service.serve.run",
                        lambda s, host, port: served.append(s))
    config = deployment_with(tmp_path, '[service]\napp_db = "app.sqlite"\n')
    result = CliRunner().invoke(cli, ["--config-file", str(config), "serve"])
    assert result.exit_code == 0, result.output
    assert served[0].app_db == str(tmp_path / "app.sqlite") and served[0].secure_cookies
    assert f"App database: {tmp_path / 'app.sqlite'}" in result.stderr


def test_a_route_without_an_access_rule_is_found() -> None:
    app, router = FastAPI(), APIRouter(prefix="/api")

    @router.get("/forgotten")
    def forgotten() -> None: ...

    app.include_router(router)
    assert unguarded(app.routes) == ["/api/forgotten"]
