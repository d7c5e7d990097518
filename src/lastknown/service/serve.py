"""Run the service with Uvicorn (what ``lastknown serve`` calls)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from lastknown.config import Deployment
from lastknown.errors import ConfigError
from lastknown.service.settings import ServiceSettings


def is_loopback(host: str) -> bool:
    """True for 127.0.0.1, ::1 and localhost.

    >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0"), is_loopback("localhost")
    (True, False, True)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def prepare(deployment: Deployment | None, *, demo: bool, host: str,
            app_db: str | None) -> tuple[ServiceSettings, Path | None]:
    """The settings to serve with (``deployment`` is unused with ``demo``, which makes its
    own); for ``demo``, the seeded demo folder too."""
    if not demo:
        if deployment is None:
            raise ConfigError("no deployment to serve; give --config-file or use --demo")
        return ServiceSettings.from_deployment(deployment, app_db=app_db), None
    if not is_loopback(host):
        raise ConfigError(f"--demo serves demo passwords over plain http: it listens only on "
                          f"this machine (127.0.0.1), not {host}")
    from lastknown.service.auth import password_hasher
    from lastknown.service.db import open_app_db
    from lastknown.service.demo import demo_deployment, demo_folder, seed

    folder = demo_folder()
    demo_dep = demo_deployment(folder)
    settings = ServiceSettings(deployment=demo_dep, app_db=app_db or str(folder / "app.sqlite"),
                               secure_cookies=False, demo=True)
    db = open_app_db(settings.app_db)
    try:
        seed(db, password_hasher(settings.password_cost), demo_dep)
    finally:
        db.close()
    return settings, folder


def describe(settings: ServiceSettings) -> str:
    """One line naming the app database (a password in its URL hidden).

    >>> from lastknown.service.demo import demo_deployment
    >>> s = ServiceSettings(deployment=demo_deployment(Path("/d")),
    ...                     app_db="postgresql+psycopg://lk:secret@db/app")
    >>> describe(s)
    'App database: postgresql+psycopg://lk:***@db/app'
    """
    url = settings.app_db
    if "://" in url:
        import sqlalchemy as sa

        url = sa.make_url(url).render_as_string(hide_password=True)
    return f"App database: {url}"


def run(settings: ServiceSettings, *, host: str, port: int) -> None:
    """Serve until interrupted."""
    import uvicorn

    from lastknown.service.app import create_app

    uvicorn.run(create_app(settings), host=host, port=port, proxy_headers=False,
                server_header=False, log_level="info")
