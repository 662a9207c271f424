// Replay mode of the viewer page: an ended live's recording, with the product card that was
// featured at the video's current time (it follows playback and seeking).

import { ApiError, api } from "./api.js";

/**
 * The replay of `streamId` and its chat as it was (read-only), or null when there is none to
 * watch. Throws ApiError 503 while the products service has not yet heard that the live ended.
 */
export async function loadReplay(streamId) {
  let replay;
  try {
    replay = await api(`/api/live/streams/${streamId}/replay`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
  const query = `stream_id=${encodeURIComponent(streamId)}`;
  const [chat, pinned] = await Promise.all([ // extras: the replay plays without them
    api(`/api/live/chat?${query}&limit=50`).catch(() => ({ items: [] })),
    api(`/api/live/chat/pinned?${query}`).catch(() => []),
  ]);
  return { replay, chat: chat.items || [], pinned };
}

export class ReplayTimeline {
  // timeupdate follows playback (a few times a second); the others, jumps.
  static EVENTS = ["timeupdate", "seeking", "seeked", "loadedmetadata", "emptied"];

  /**
   * @param {HTMLVideoElement} video  playing the replay
   * @param {Array} moments  the replay's timeline: product cards with from_s and to_s (seconds)
   * @param {(moment: object | null) => void} onChange  called with the card featured from now on
   */
  constructor(video, moments, onChange) {
    this.video = video;
    this.moments = moments;
    this.onChange = onChange;
    this.current = undefined; // nothing shown yet: the first sync always reports
    this.sync = () => this.follow();
    for (const type of ReplayTimeline.EVENTS) video.addEventListener(type, this.sync);
    this.follow();
  }

  /** The card featured `seconds` into the replay (the latest to start, if two overlap). */
  at(seconds) {
    let found = null;
    for (const moment of this.moments) {
      if (moment.from_s <= seconds && (moment.to_s === null || seconds < moment.to_s)) {
        found = moment;
      }
    }
    return found;
  }

  follow() {
    const moment = this.at(this.video.currentTime || 0);
    if (moment === this.current) return;
    this.current = moment;
    this.onChange(moment);
  }

  stop() {
    for (const type of ReplayTimeline.EVENTS) this.video.removeEventListener(type, this.sync);
  }
}
