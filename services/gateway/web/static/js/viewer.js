// The viewer page `/live` and `/live/{id}`: video, featured product, products, chat.

import { ApiError, api, randomId } from "./api.js";
import { mountSignIn, onAuthChange, setToken, token, user } from "./auth.js";
import { watchLive } from "../sdk/index.js";
import { ViewerCart } from "./cart.js";
import { renderChatLog } from "./chatlog.js";
import {
  formatDate, formatPrice, languageButton, onLanguageChange, t, translate,
} from "./i18n.js";
import { LiveState, el } from "./livestate.js";
import { Player } from "./player.js";
import { ReplayTimeline, loadReplay } from "./replay.js";
import { showReminders } from "./reminders.js";
import { scheduledLives, showUpcoming } from "./upcoming.js";

const $ = (id) => document.getElementById(id);
const state = new LiveState();
const player = new Player($("video"));
const sessionId = viewerSession();
const cart = new ViewerCart(sessionId, {
  button: $("cart-button"), drawer: $("cart-drawer"), announce: $("cart-live"),
  onChange: () => state.stream && renderProducts(),
});
let socket = null;
let replayUrl = null; // replay mode: the recording played instead of the live
let replay = null; // then, the timeline of featured products following the video
let chatFeedbackTimer = null;
// An ended live whose replay is still being made (Mux's comes minutes later): looked for again.
const REPLAY_CHECK_MS = 15_000;
let replaySoon = false;

function viewerSession() {
  let id = localStorage.getItem("vitrine.session");
  if (!id || !/^[A-Za-z0-9_-]{16,64}$/.test(id)) { // the API wants 16+: a cart is reached by it
    id = `s${randomId(12)}`;
    localStorage.setItem("vitrine.session", id);
  }
  return id;
}

/** `/live/{id}`: that live's id. */
function addressedLive() {
  return location.pathname.match(/^\/live\/([0-9a-fA-F-]{36})\/?$/)?.[1] ?? null;
}

/** For `/live`: the live on air, else the next scheduled, else the latest replay; `lives`: those
 * viewers see (GET /api/live/streams). */
async function chooseLive(lives) {
  const onAir = lives.find((s) => s.status === "live");
  if (onAir) return onAir.id;
  const next = scheduledLives(lives);
  if (next.length) return next[0].id;
  const ended = (await api("/api/live/streams?status=ended&limit=20")).items; // latest ended first
  return ended.find((s) => s.replay_url)?.id ?? null; // nothing coming: the latest replay
}

/** Show `text` above the page (none: hide it); a `label` is translated again on a switch. */
function notice(text, label = null) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
  if (label) $("notice").dataset.i18n = label;
  else delete $("notice").dataset.i18n;
}

async function start() {
  let streamId = addressedLive();
  try {
    const lives = (await api("/api/live/streams")).items;
    streamId ??= await chooseLive(lives);
    showUpcoming(lives, streamId);
  } catch {
    if (!streamId) {
      notice(t("error.network"));
      setTimeout(start, 5_000);
      return;
    }
    showUpcoming([], streamId); // the list comes with its next refresh; the live shows now
  }
  if (!streamId) {
    notice(t("live.none"));
    setTimeout(start, 15_000); // the next live appears without a reload
    return;
  }
  socket = watchLive(streamId, {
    token,
    sessionId,
    onSnapshot: (data) => {
      state.applySnapshot(data);
      rememberIfEnded();
      notice("");
      $("live").hidden = false;
      renderAll(true);
    },
    onEvent: (frame) => {
      render(state.apply(frame));
      if (frame.type === "product.updated") {
        cart.productChanged(frame.data.product, { streamId, payable: payable(frame.data.product) });
      }
      rememberIfEnded();
      // The live ended and its recording is ready: watch it again, shoppable.
      if (state.stream?.status === "ended" && state.stream.replay_url) watchReplay(streamId);
    },
    onMessage: serverMessage,
    onState: connectionState,
  });
  window.vitrine = { socket, state, player, cart }; // for the console (and the browser tests)
}

let replayLoading = null;
let replayTries = 0;

/** Replay mode, if the live has a replay: resolves to whether it has one. */
function watchReplay(streamId) {
  replayLoading ??= enterReplay(streamId).finally(() => { replayLoading = null; });
  return replayLoading;
}

async function enterReplay(streamId) {
  if (replayUrl) return true;
  let found;
  try {
    found = await loadReplay(streamId);
  } catch {
    // Being made (the products service is a moment behind) or a network hiccup: try again.
    if (replayTries++ < 10) setTimeout(() => watchReplay(streamId), 2_000);
    return false;
  }
  if (!found) return false;
  socket?.close(); // nothing more happens in an ended live
  replayUrl = found.replay.replay_url;
  state.applySnapshot({ stream: found.replay.stream, products: found.replay.products,
    recent_messages: found.chat, pinned_messages: found.pinned });
  notice("");
  $("live").hidden = false;
  $("chat-signin").dataset.i18n = "chat.replay";
  renderChatForm();
  renderAll(true); // the player now plays the recording, from its start
  replay = new ReplayTimeline($("video"), found.replay.timeline, (moment) => {
    state.featured = moment;
    for (const product of state.products) {
      product.is_featured = product.product_id === moment?.product_id;
    }
    renderProducts();
  });
  window.vitrine.replay = replay;
  return true;
}

/** An ended live is one viewers no longer reach: this tab remembers it ended (reloads too). */
function rememberIfEnded() {
  if (state.stream?.status === "ended") sessionStorage.setItem(`vitrine.ended.${state.stream.id}`, "1");
}

function knownEnded(streamId) {
  return (state.stream?.id === streamId && state.stream.status === "ended")
    || sessionStorage.getItem(`vitrine.ended.${streamId}`) === "1";
}

/** The live ended and its replay is not ready yet: say it is coming, and look until it is. */
function awaitReplay(streamId) {
  socket?.close(); // nothing more happens in an ended live
  if (replaySoon) return;
  replaySoon = true;
  if (state.stream) {
    notice("");
    $("live").hidden = false;
    renderStream(); // what was seen of the live stays, the video box saying the replay comes
  } else {
    notice(t("live.replaysoon"), "live.replaysoon");
  }
  const check = async () => {
    if (!(await watchReplay(streamId))) setTimeout(check, REPLAY_CHECK_MS);
  };
  setTimeout(check, REPLAY_CHECK_MS);
}

function connectionState(name, detail) {
  const box = $("connection");
  const away = name === "reconnecting" || name === "offline";
  box.classList.toggle("reconnecting", away);
  box.textContent = away ? t("live.reconnecting") : "";
  // A token the gateway refuses (expired): watch on signed out; signing out reconnects the socket.
  if (name === "stopped" && detail?.code === 4401) setToken(null);
  if (name === "stopped" && detail?.code === 4404) {
    // Not a live to watch: maybe one to watch again, now or once its replay is made.
    const streamId = socket.streamId;
    watchReplay(streamId).then((found) => {
      if (found) return;
      if (knownEnded(streamId)) {
        awaitReplay(streamId);
        return;
      }
      $("live").hidden = true;
      player.play(null);
      notice(t("live.notfound"));
    });
  }
}

function renderAll(fresh = false) {
  render(["stream", "products", "chat", "viewers"], fresh);
}

function render(parts, fresh = false) {
  if (parts.includes("stream")) renderStream();
  // A card's price depends on the live's status too (announced before, given from the start).
  if (parts.includes("products") || parts.includes("stream")) renderProducts();
  if (parts.includes("chat")) renderChat(fresh);
  if (parts.includes("viewers")) renderViewers();
}

function renderStream() {
  const stream = state.stream;
  if (state.deleted || !stream) {
    $("live").hidden = true;
    showReminders(null);
    player.play(null);
    notice(t("live.notfound"));
    return;
  }
  document.title = `${stream.title} — Vitrine`;
  $("live-title").textContent = stream.title;
  $("live-description").textContent = stream.description || "";
  const badge = $("live-badge");
  badge.hidden = false;
  badge.className = `badge ${replayUrl ? "replay" : stream.status}`;
  badge.textContent = t(replayUrl ? "live.replay"
    : { live: "live.badge", scheduled: "live.scheduled", ended: "live.ended" }[stream.status]);
  showReminders(replayUrl ? null : stream);
  $("live-when").textContent =
    replayUrl && stream.started_at ? t("live.aired", { when: formatDate(stream.started_at) })
      : stream.status === "scheduled" && stream.scheduled_at
        ? t("live.starts", { when: formatDate(stream.scheduled_at) })
        : "";
  const playing = replayUrl || (stream.status === "live" && stream.playback_url);
  player.play(playing || null);
  $("video-waiting").hidden = Boolean(playing);
  $("video-waiting").textContent = stream.status !== "ended" ? t("live.waiting")
    : t(replaySoon ? "live.replaysoon" : "live.ended");
}

function renderViewers() {
  const count = $("viewer-count");
  count.hidden = state.stream?.status !== "live";
  count.textContent = t("live.viewers", { n: state.viewers.current });
  count.setAttribute("aria-label", `${t("live.viewers.label")}: ${state.viewers.current}`);
}

/** What the product costs in a cart now: its live price from the live's start (while the
 * offer holds: the card loses its live price when it closes), else the catalog price. */
function payable(product) {
  const special = product.live_price !== null && product.live_price !== undefined;
  return special && state.stream?.status !== "scheduled" ? product.live_price : product.price;
}

/** The price to pay now, the catalog price struck beside a live price. Before the live starts
 * the cart charges the catalog price (the shop holds the live's code from its start), so the
 * live price is announced, not given. */
function priceOf(product) {
  const shown = (amount) => formatPrice(amount, product.currency);
  const announced = state.stream?.status === "scheduled" && product.live_price !== null
    && product.live_price !== undefined && product.live_price !== product.price;
  if (announced) {
    return el("span", { class: "price" }, el("strong", { text: shown(product.price) }),
      el("span", { class: "price-soon", text: t("product.livesoon", { price: shown(product.live_price) }) }));
  }
  const pay = payable(product);
  return el("span", { class: "price" }, pay !== product.price ? el("del", { text: shown(product.price) }) : null,
    el("strong", { text: shown(pay) }));
}

/** "Only 3 left" when few are left; sold out shows on the button. */
function stockOf(product) {
  const stock = product.stock;
  if (stock === null || stock === undefined || stock === 0 || stock > 5) return null;
  return el("span", { class: "stock", text: t("product.left", { n: stock }) });
}

/** The product's add-to-cart: "Adding…" while on its way, disabled when sold out; `short`: the
 * list's narrow button ("Add"), named in full for assistive technologies. */
function addButton(product, className, where, { short = false } = {}) {
  const soldOut = product.stock === 0;
  const adding = cart.adding.has(product.product_id);
  const label = soldOut ? t("product.soldout") : adding ? t("product.adding") : t("product.add");
  const shown = short && !soldOut && !adding ? t("product.add.short") : label;
  return el("button", { type: "button", class: `${className} add-to-cart${soldOut ? " sold-out" : ""}`,
    text: shown, disabled: soldOut || adding, "aria-label": `${label} — ${product.name}`,
    onclick: () => addToCart(product, where) });
}

/** What happened to the product's last add-to-cart from `where` (added, or why not), for a few
 * seconds: said under the button pressed only. */
function noteOf(product, where) {
  const note = cart.notes.get(product.product_id);
  return note?.where === where ? note : null;
}

let shownFeatured; // undefined until the first render

function renderFeatured() {
  const product = state.featured;
  const note = product ? noteOf(product, "featured") : null;
  $("cart-status").textContent = note?.text ?? "";
  $("cart-status").className = note ? `cart-note ${note.ok ? "ok" : "error"}` : "cart-note";
  const key = product
    ? JSON.stringify(product) + document.documentElement.lang + cart.adding.has(product.product_id)
    : null;
  if (key === shownFeatured) return; // unchanged: nothing re-announced
  shownFeatured = key;
  const box = $("featured-card");
  box.replaceChildren();
  if (!product) {
    box.append(el("p", { class: "muted", text: t("featured.none") }));
    return;
  }
  box.append(el("article", { class: "card", dataset: { productId: product.product_id } },
    product.image_url ? el("img", { src: product.image_url, alt: product.name, loading: "lazy" }) : null,
    el("div", { class: "card-body" },
      el("h3", { text: product.name }),
      priceOf(product),
      product.promo_code ? el("p", { class: "promo", text: t("product.promo", { code: product.promo_code }) }) : null,
      stockOf(product),
      product.description ? el("p", { class: "muted", text: product.description }) : null,
      addButton(product, "primary", "featured"))));
}

function renderProducts() {
  renderFeatured();
  const list = $("product-list");
  list.replaceChildren();
  if (!state.products.length) {
    list.append(el("li", { class: "muted", text: t("products.empty") }));
    return;
  }
  for (const product of state.products) {
    list.append(el("li", { class: product.is_featured ? "product is-featured" : "product",
      dataset: { productId: product.product_id } },
      product.image_url ? el("img", { src: product.image_url, alt: "", loading: "lazy" }) : null,
      el("button", { type: "button", class: "link product-name", text: product.name,
        "aria-label": t("product.view", { name: product.name }),
        onclick: () => openProduct(product) }),
      el("span", { class: "product-meta" }, priceOf(product), stockOf(product)),
      addButton(product, "small", "list", { short: true }),
      noteLine(noteOf(product, "list"))));
  }
}

function openProduct(product) {
  const streamId = state.stream.id;
  api(`/api/live/streams/${streamId}/products/${product.product_id}/click`, {
    method: "POST", body: { session_id: sessionId },
  }).catch(() => {}); // a lost click must never get in the viewer's way
  if (product.product_url) window.open(product.product_url, "_blank", "noopener");
}

function noteLine(note) {
  return note ? el("p", { class: `cart-note ${note.ok ? "ok" : "error"}`, text: note.text }) : null;
}

function addToCart(product, where) {
  return cart.add(state.stream.id, product, where);
}

function renderChat(fresh) {
  renderChatLog({ state, pinned: $("pinned"), log: $("messages"), fresh });
}

function renderChatForm() {
  const signedIn = Boolean(user());
  $("chat-form").hidden = !signedIn || Boolean(replayUrl); // a replay's chat is read-only
  $("chat-signin").hidden = signedIn && !replayUrl;
  translate($("chat-signin").parentElement);
}

function chatFeedback(text) {
  $("chat-feedback").textContent = text;
  clearTimeout(chatFeedbackTimer);
  if (text) chatFeedbackTimer = setTimeout(() => { $("chat-feedback").textContent = ""; }, 8_000);
}

function serverMessage(frame) {
  if (frame.type === "chat.held") chatFeedback(t("chat.held"));
  if (frame.type !== "error") return;
  const { status, detail, retry_after: retryAfter } = frame.data || {};
  if (status === 429 && retryAfter) chatFeedback(t("chat.slow", { s: retryAfter }));
  else chatFeedback(t("chat.error", { detail: detail || status }));
}

$("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("chat-input");
  const message = input.value.trim();
  if (!message) return;
  if (!socket?.postChat(message)) {
    chatFeedback(t("chat.offline"));
    return;
  }
  chatFeedback("");
  input.value = "";
});

translate();
languageButton($("lang"));
mountSignIn(document.querySelector(".signin"));
renderChatForm();
onAuthChange(() => {
  renderChatForm();
  if (!replayUrl) socket?.reconnectNow(); // the socket carries the token: resume signed in, since=
  cart.load();
});
onLanguageChange(() => {
  cart.render();
  if (state.stream) renderAll();
});
cart.load();
start().catch((error) => notice(t("error.generic", { detail: error instanceof ApiError ? error.detail : error })));
