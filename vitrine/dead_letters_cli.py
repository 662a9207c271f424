"""`vitrine dead-letters`: list, replay or discard the events consumers gave up on.

Reads NATS_URL (a cluster's servers comma-separated) and JETSTREAM_STREAM like the services, and
nothing else: no service's secret is needed. A replay is done by the consumer's own
service (one running replica, over NATS request/reply), so it runs the real handler, once.
"""

import asyncio
from typing import Annotated, Any

import nats
import typer
from nats.errors import NoRespondersError
from nats.js.errors import NotFoundError

from chassis import dead_letters
from chassis.bus import server_urls
from chassis.settings import BusSettings

app = typer.Typer(help="Events consumers gave up on (chassis.dead_letters).", no_args_is_help=True)


async def _with_nats(work: Any) -> Any:
    settings = BusSettings()  # NATS only: no service's secrets needed to look at dead letters
    nc = await nats.connect(
        server_urls(settings.nats_url),
        connect_timeout=5,
        max_reconnect_attempts=1,
        **settings.nats_options(),
    )
    try:
        return await work(nc, settings.jetstream_stream)
    finally:
        await nc.close()


@app.command("list")
def list_(
    consumer: Annotated[str | None, typer.Option(help="only this durable consumer's")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
) -> None:
    """The oldest dead letters: seq, when, consumer, why, after how many deliveries, error."""

    async def work(nc: Any, stream: str) -> list[dead_letters.DeadLetter]:
        return await dead_letters.dead_letters(
            nc.jetstream(), stream=stream, consumer=consumer, limit=limit
        )

    try:
        found = asyncio.run(_with_nats(work))
    except NotFoundError:
        found = []  # no consumer ever parked one: the stream does not exist yet
    for letter in found:
        when = letter.parked_at.isoformat(timespec="seconds") if letter.parked_at else "-"
        typer.echo(
            f"{letter.seq}\t{when}\t{letter.consumer}\t{letter.reason}\t"
            f"{letter.deliveries}\t{letter.subject}\t{letter.error}"
        )
    if not found:
        typer.echo("no dead letters", err=True)


@app.command()
def replay(seq: Annotated[int, typer.Argument(help="the dead letter's seq (from `list`)")]) -> None:
    """Handle a dead letter again in its consumer's service, then remove it."""

    async def work(nc: Any, stream: str) -> dict[str, Any]:
        letter = await dead_letters.dead_letter(nc.jetstream(), stream=stream, seq=seq)
        return await dead_letters.request_replay(
            nc, stream=stream, consumer=letter.consumer, seq=seq
        )

    try:
        answer = asyncio.run(_with_nats(work))
    except NotFoundError:
        typer.echo(f"no dead letter {seq}", err=True)
        raise typer.Exit(1) from None
    except NoRespondersError:
        typer.echo("its consumer's service is not running: start it and try again", err=True)
        raise typer.Exit(1) from None
    if "error" in answer:
        typer.echo(f"not replayed: {answer['error']}", err=True)
        raise typer.Exit(1)
    typer.echo(f"replayed {seq}" + ("" if answer["handled"] else " (it had been handled already)"))


@app.command()
def discard(seq: int) -> None:
    """Remove a dead letter without handling it (judged not worth replaying)."""

    async def work(nc: Any, stream: str) -> None:
        await dead_letters.discard(nc.jetstream(), stream=stream, seq=seq)

    try:
        asyncio.run(_with_nats(work))
    except NotFoundError:
        typer.echo(f"no dead letter {seq}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"discarded {seq}")
