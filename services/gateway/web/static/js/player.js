// The player: HLS through hls.js (installed by `npm ci`, served from /static/vendor) or the
// browser's own HLS (Safari, iOS); anything else, a replay's MP4, the browser plays itself.
// Before the encoder publishes, the playlist 404s: keep trying quietly.

const RETRY_MS = 2_000;

export class Player {
  constructor(video) {
    this.video = video;
    this.url = null;
    this.hls = null;
    this.retry = null;
  }

  /** Play `url` (null stops playback). Playing the same url again changes nothing. */
  play(url) {
    if (url === this.url) return;
    this.stop();
    this.url = url;
    if (!url) return;
    this.video.muted = true; // browsers only autoplay muted; the controls unmute
    const Hls = window.Hls;
    if (!isHls(url)) {
      this.video.src = url;
      this.video.play().catch(() => {});
    } else if (Hls?.isSupported()) {
      this.startHls(Hls, url);
    } else if (this.video.canPlayType("application/vnd.apple.mpegurl")) {
      this.video.src = url;
      this.video.addEventListener("error", () => this.later(() => this.reload()), { once: true });
      this.video.play().catch(() => {});
    }
  }

  startHls(Hls, url) {
    const hls = new Hls({ lowLatencyMode: true, liveDurationInfinity: true });
    this.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => this.video.play().catch(() => {}));
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal || hls !== this.hls) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls.recoverMediaError();
      } else {
        this.later(() => this.reload());
      }
    });
    hls.loadSource(url);
    hls.attachMedia(this.video);
  }

  later(action) {
    clearTimeout(this.retry);
    this.retry = setTimeout(action, RETRY_MS);
  }

  reload() {
    const url = this.url;
    this.url = null;
    this.play(url);
  }

  stop() {
    clearTimeout(this.retry);
    this.hls?.destroy();
    this.hls = null;
    this.url = null;
    this.video.removeAttribute("src");
    this.video.load();
  }
}

function isHls(url) {
  return new URL(url, location.href).pathname.endsWith(".m3u8");
}
