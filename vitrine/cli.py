"""`vitrine`: serve a service, migrate, print a dev token, or run everything (`vitrine dev`)."""

import asyncio
import contextlib
import logging
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from chassis.auth import issue_token
from chassis.logs import configure as configure_logs
from chassis.settings import ServiceSettings
from vitrine import dead_letters_cli
from vitrine.services import SERVICES, spec

app = typer.Typer(help="Vitrine, the live-shopping backend.", no_args_is_help=True)
app.add_typer(dead_letters_cli.app, name="dead-letters")


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help=f"one of: {', '.join(SERVICES)}")],
    host: Annotated[str, typer.Option(envvar="VITRINE_BIND")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="default: the service's *_PORT")] = None,
) -> None:
    """Run one service (its HTTP API; for the gateway, also the viewer websocket)."""
    from services.gateway.rawsocket import FanoutWebSocketProtocol

    chosen = spec(service)
    settings = chosen.settings()
    configure_logs(settings.logs_as)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per proxied request
    uvicorn.run(
        chosen.create_app(settings),
        host=host,
        port=port or getattr(settings, chosen.port_setting),
        ws=FanoutWebSocketProtocol.configured(
            send_buffer_bytes=getattr(settings, "ws_send_buffer_bytes", 0)
        ),
        ws_per_message_deflate=False,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,  # longer than the gateway keeps an idle connection (upstream.py)
    )


@app.command()
def migrate(
    services: Annotated[
        list[str] | None, typer.Argument(help="default: every service", show_default=False)
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="only wait until the schemas are migrated (by someone else)")
    ] = False,
    timeout: Annotated[float, typer.Option(help="with --wait: seconds, then exit 1")] = 600.0,
) -> None:
    """Bring the services' schemas to the newest version, or with --wait (a Kubernetes init
    container) wait until the migrate Job has."""
    names = services or list(SERVICES)
    for name in names:
        if name not in SERVICES:  # before anything runs
            raise typer.BadParameter(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    if wait:
        from vitrine.migrate_wait import wait_until_migrated

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        late = asyncio.run(wait_until_migrated(names, timeout_s=timeout))
        if late:
            typer.echo(f"not migrated after {timeout:.0f}s: {', '.join(late)}", err=True)
            raise typer.Exit(1)
        typer.echo(f"migrated: {', '.join(names)}")
        return

    async def run() -> None:
        for name in names:
            chosen = spec(name)
            if chosen.migrate is not None:
                await chosen.migrate(chosen.settings())
                typer.echo(f"{name}: migrated")

    asyncio.run(run())


@app.command()
def token(
    admin: Annotated[bool, typer.Option(help="with the admin role")] = False,
    moderator: Annotated[bool, typer.Option(help="with the moderator role")] = False,
    name: Annotated[str, typer.Option(help="display name")] = "Dev",
    user_id: Annotated[str | None, typer.Option(help="the token's sub")] = None,
    hours: Annotated[int, typer.Option(min=1, max=24 * 30)] = 12,
) -> None:
    """Print a JWT signed with JWT_SECRET, for local use."""
    from datetime import timedelta

    role = "admin" if admin else "moderator" if moderator else None
    typer.echo(
        issue_token(
            secret=ServiceSettings().jwt_secret.get_secret_value(),
            user_id=user_id or f"dev-{secrets.token_hex(4)}",
            name=name,
            role=role,
            ttl=timedelta(hours=hours),
        )
    )


@app.command()
def events(
    durable: Annotated[str, typer.Option(help="the durable consumer's name; reused, it resumes")],
    live: Annotated[str | None, typer.Option(help="one live's id; default: every live")] = None,
    types: Annotated[
        list[str] | None, typer.Option("--type", help="e.g. product.featured or product.>")
    ] = None,
    from_now: Annotated[bool, typer.Option(help="a new durable skips the events kept")] = False,
) -> None:
    """Print the events as JSON lines, one envelope each, from a durable consumer (NATS_URL,
    JETSTREAM_STREAM, SUBJECT_ROOT); each is acknowledged once printed."""
    from nats.js.api import DeliverPolicy

    from vitrine.client import EventFeed

    settings = ServiceSettings()

    async def run() -> None:
        async with await EventFeed.connect(
            settings.nats_url,
            durable=durable,
            stream_id=live,
            types=types or (),
            subject_root=settings.subject_root,
            stream=settings.jetstream_stream,
            start=DeliverPolicy.NEW if from_now else DeliverPolicy.ALL,
            **settings.nats_options(),
        ) as feed:
            async for event in feed:
                typer.echo(event.envelope.model_dump_json())
                await event.ack()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    except (LookupError, ValueError) as refused:  # no such stream; a durable's other filter
        typer.echo(str(refused), err=True)
        raise typer.Exit(1) from None


@app.command("nats-auth")
def nats_auth_conf() -> None:
    """Print the bus's users and permissions (deploy/nats/auth.conf) for SUBJECT_ROOT and
    JETSTREAM_STREAM: each service publishes only its own events."""
    from vitrine.nats_auth import conf_file

    settings = ServiceSettings()
    typer.echo(
        conf_file(subject_root=settings.subject_root, stream=settings.jetstream_stream), nl=False
    )


@app.command()
def dev(
    state_dir: Annotated[Path, typer.Option(help="embedded servers' data")] = Path(".vitrine"),
    demo: Annotated[bool, typer.Option(help="load the demo live")] = True,
    start_timeout: Annotated[
        float, typer.Option(envvar="VITRINE_START_TIMEOUT_S", help="seconds a service may take")
    ] = 900.0,
    stall_timeout: Annotated[
        float,
        typer.Option(
            envvar="VITRINE_STALL_TIMEOUT_S",
            help="seconds a starting service may go without using CPU or logging",
        ),
    ] = 120.0,
) -> None:
    """Run everything locally: servers (embedded where none run), migrations, services, demo."""
    from vitrine.devrun import run_dev

    status = run_dev(
        state_dir=state_dir,
        demo=demo,
        gateway_port=int(os.environ.get("GATEWAY_PORT", 8000)),
        start_timeout_s=start_timeout,
        stall_s=stall_timeout,
    )
    raise typer.Exit(status)


if __name__ == "__main__":
    app()
