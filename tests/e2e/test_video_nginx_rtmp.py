"""nginx-rtmp for real: nginx + libnginx-mod-rtmp run from deploy/nginx-rtmp/ (its nginx.conf and
record-done.sh), calling the system through the gateway, and ffmpeg publishing like OBS would."""

import asyncio
import json
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from services.streams.settings import INSECURE_RTMP_CALLBACK_SECRET
from tests.conftest import auth, eventually
from tests.e2e.conftest import GRACE_S
from tests.support.encoder import publishing
from tests.support.viewer import WsViewer
from vitrine import nginx_rtmp

pytestmark = pytest.mark.skipif(
    nginx_rtmp.unavailable() is not None, reason=str(nginx_rtmp.unavailable())
)


async def create_live(gateway: httpx.AsyncClient, tokens: dict) -> dict:
    created = await gateway.post(
        "/api/live/streams", json={"title": "Unboxing live"}, headers=auth(tokens["admin"])
    )
    assert created.status_code == 201, created.text
    return created.json()


async def admin_view(gateway: httpx.AsyncClient, tokens: dict, stream_id: str) -> dict:
    answer = await gateway.get(f"/api/live/streams/{stream_id}", headers=auth(tokens["admin"]))
    assert answer.status_code == 200, answer.text
    return answer.json()["stream"]


async def playlist(url: str) -> str | None:
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.get(url)
    return answer.text if answer.status_code == 200 and "#EXTINF" in answer.text else None


async def test_publishing_with_the_key_goes_live_serves_hls_and_ends_into_a_replay(
    gateway, system, nginx, on_test_nginx, tokens
):
    live = await create_live(gateway, tokens)
    key, playback_id = live["stream_key"], live["playback_id"]
    assert live["obs"] == {"server": nginx.ingest_url, "stream_key": key}
    assert live["playback_url"] == f"{nginx.http_url}/hls/{playback_id}.m3u8"
    viewer = await WsViewer.open(system.url("gateway"), live["id"])
    assert (await viewer.next())["type"] == "snapshot"

    async with publishing(f"{live['obs']['server']}/{key}") as encoder:
        started = await viewer.next_of("stream.started", timeout=15)
        assert started["data"]["stream"]["status"] == "live"
        assert (await admin_view(gateway, tokens, live["id"]))["provider_state"] == "connected"

        # Viewers play the HLS playlist at the live's playback URL; it never names the key.
        text = await eventually(lambda: playlist(live["playback_url"]), timeout=20, interval=0.5)
        assert key not in text
        segment = next(line for line in text.splitlines() if line.endswith(".ts"))
        assert segment.startswith(playback_id)
        async with httpx.AsyncClient(timeout=5) as client:
            media = await client.get(f"{nginx.http_url}/hls/{segment}")
        assert media.status_code == 200 and media.content[:1] == b"\x47"  # MPEG-TS sync byte
        assert not [p for p in nginx.root.rglob("*") if key in p.name]
        assert encoder.process.poll() is None

    # The encoder left: a provider state at once, the end only after the reconnect grace.
    left = await admin_view(gateway, tokens, live["id"])
    disconnected = await eventually(
        lambda: _with_state(gateway, tokens, live["id"], "disconnected"), timeout=5
    )
    assert disconnected["status"] == "live" and disconnected["end_deadline"] is not None
    # nginx reports the recording and the publish's end in either order.
    assert disconnected["last_webhook"]["type"] in ("on_publish_done", "on_record_done")
    ended = await viewer.next_of("stream.ended", timeout=GRACE_S + 10)
    assert ended["data"]["stream"]["status"] == "ended"
    assert left["status"] == "live"

    # The recording becomes the replay once remuxed: a complete MP4, named by the playback id.
    stream = await eventually(lambda: _with_replay(gateway, tokens, live["id"]), timeout=30)
    assert stream["replay_url"] == f"{nginx.replay_base_url}/{playback_id}.mp4", nginx.logs()
    async with httpx.AsyncClient(timeout=5) as client:
        replay = await client.get(stream["replay_url"])
        log = await client.get(f"{nginx.replay_base_url}/record-done.log")
    assert replay.status_code == 200 and replay.headers["content-type"] == "video/mp4"
    assert replay.content[4:8] == b"ftyp"
    # +faststart: the index comes before the media, so browsers start playing at once.
    assert replay.content.find(b"moov") < replay.content.find(b"mdat")
    probed = await _probe(replay.content, nginx.root / "probe.mp4")
    assert {s["codec_name"] for s in probed["streams"]} == {"h264", "aac"}
    assert float(probed["format"]["duration"]) > 1
    assert log.status_code == 404  # only finished replays are served from there
    await viewer.close()
    await _the_callback_secret_stays_out_of_recordings_and_logs(nginx)


async def _the_callback_secret_stays_out_of_recordings_and_logs(
    nginx: nginx_rtmp.NginxRtmp,
) -> None:
    """Whoever has the secret can end any live: after a recording, no file in the recordings
    folder (a volume of public files) nor anything nginx serves holds it, nor do the logs."""
    secret = INSECURE_RTMP_CALLBACK_SECRET.encode()
    served = [p for folder in ("recordings", "hls") for p in (nginx.root / folder).rglob("*")]
    assert [p for p in served if p.is_file() and secret in p.read_bytes()] == []
    async with httpx.AsyncClient(base_url=nginx.http_url, timeout=5) as client:
        for path in ["/", "/hls/", "/recordings/"] + [
            f"/{p.relative_to(nginx.root)}" for p in served if p.is_file()
        ]:
            answer = await client.get(path)
            assert secret not in answer.content, path
    # record-done.sh's log is in the run directory's log folder, and says what it did.
    record_done_log = nginx.root / "logs" / "record-done.log"
    assert b"replay ready" in record_done_log.read_bytes(), nginx.logs()
    assert not (nginx.root / "recordings" / "record-done.log").exists()
    for log in (nginx.root / "logs").iterdir():
        assert secret not in log.read_bytes(), log.name
    # The configuration holds it, readable by its owner alone.
    assert stat.S_IMODE((nginx.root / "nginx.conf").stat().st_mode) == 0o600


async def test_a_wrong_key_is_refused_and_the_encoder_fails(
    gateway, system, nginx, on_test_nginx, tokens
):
    live = await create_live(gateway, tokens)
    async with publishing(f"{nginx.ingest_url}/live_not-a-key") as encoder:
        assert await encoder.exited(20) != 0
    after = await admin_view(gateway, tokens, live["id"])
    assert after["status"] == "scheduled" and after["provider_state"] is None
    assert not list((nginx.root / "hls").glob("live_not-a-key*"))
    # The admin can tell why: the platform's settings show the last publish refused.
    shown = await gateway.get("/api/live/settings", headers=auth(tokens["admin"]))
    refused = shown.json()["last_refused_publish"]
    assert (refused["key"], refused["reason"], refused["app"]) == ("…-key", "unknown key", "live")


async def test_ending_a_live_disconnects_the_encoder_and_the_replay_ends_there(
    gateway, system, nginx, on_test_nginx, tokens
):
    live = await create_live(gateway, tokens)
    admin = auth(tokens["admin"])
    publish_url = f"{nginx.ingest_url}/{live['stream_key']}"
    async with publishing(publish_url) as encoder:
        published = time.monotonic()
        await eventually(lambda: playlist(live["playback_url"]), timeout=20, interval=0.5)
        await asyncio.sleep(3)
        asked = time.monotonic()
        ended = await gateway.post(f"/api/live/streams/{live['id']}/end", headers=admin)
        assert ended.status_code == 200, ended.text
        assert await encoder.exited(5) != 0  # nginx dropped it: ffmpeg fails to write
        gone_s = time.monotonic() - asked
    on_air_s = asked - published
    print(f"\nend → encoder disconnected: {gone_s:.2f} s (answered in "
          f"{ended.elapsed.total_seconds():.2f} s)")  # fmt: skip
    assert ended.json()["status"] == "ended"
    assert ended.json()["provider_state"] == "disconnected"

    # The HLS stops with it: the playlist grows no more.
    first = await playlist(live["playback_url"])
    await asyncio.sleep(3)
    assert await playlist(live["playback_url"]) in (first, None)

    # The replay holds what was on air, nothing after the end.
    stream = await eventually(lambda: _with_replay(gateway, tokens, live["id"]), timeout=30)
    async with httpx.AsyncClient(timeout=5) as client:
        replay = await client.get(stream["replay_url"])
    duration = float((await _probe(replay.content, nginx.root / "ended.mp4"))["format"]["duration"])
    print(f"on air {on_air_s:.2f} s (from the encoder's start), replay {duration:.2f} s")
    assert 1 < duration <= on_air_s + 0.5, nginx.logs()
    recording = (await _eventually_measured(gateway, tokens, live["id"]))["recording"]
    assert recording["duration_s"] == pytest.approx(duration, abs=0.01)

    # OBS reconnecting is turned away, and the live says why.
    async with publishing(publish_url) as again:
        assert await again.exited(20) != 0
    after = await admin_view(gateway, tokens, live["id"])
    assert after["last_refused_publish"]["reason"] == "ended live"
    assert after["last_refused_publish"]["key"] == f"…{live['stream_key'][-4:]}"
    assert after["provider_state"] == "refused"


async def _eventually_measured(gateway, tokens, stream_id: str) -> dict:
    async def measured() -> dict | None:
        stream = await admin_view(gateway, tokens, stream_id)
        recording = stream.get("recording") or {}
        return stream if recording.get("duration_s") else None

    return await eventually(measured, timeout=30)


async def _with_state(gateway, tokens, stream_id: str, state: str) -> dict | None:
    stream = await admin_view(gateway, tokens, stream_id)
    return stream if stream["provider_state"] == state else None


async def _probe(content: bytes, path: Path) -> dict:
    """What ffprobe reads in an MP4: its streams and duration."""
    path.write_bytes(content)
    probed = await asyncio.to_thread(
        subprocess.run,
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams",
         str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(probed.stdout)


async def _with_replay(gateway, tokens, stream_id: str) -> dict | None:
    stream = await admin_view(gateway, tokens, stream_id)
    return stream if stream["replay_url"] else None


def test_the_deployed_configuration_is_valid_for_nginx(tmp_path) -> None:
    for folder in ("tmp", "logs"):
        (tmp_path / folder).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        nginx_rtmp.render_conf(
            callbacks_url="http://127.0.0.1:9/webhooks",
            secret=INSECURE_RTMP_CALLBACK_SECRET,
            rtmp_port=1,
            http_port=2,
            root=tmp_path,
            host="127.0.0.1",
        )
    )
    checked = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
