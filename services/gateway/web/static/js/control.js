// A live's control room: start/end, OBS settings, figures, the products panel and chat moderation.
// It follows the live on the viewer websocket like any viewer, and acts through the admin API.

import { watchLive } from "../sdk/index.js";
import { api } from "./api.js";
import { token } from "./auth.js";
import { formatPrice, formatTime, t } from "./i18n.js";
import { LiveState, el } from "./livestate.js";
import { offerPanel } from "./offer.js";
import { remindersPanel } from "./reminders_admin.js";
import { copyField, notice } from "./ui.js";

const TIMEOUT_S = 300;
const CHART_POINTS = 120;
let socket = null;
let sampler = null;

// The provider's word for the encoder, in the reader's language when there is one for it.
function encoderState(state) {
  const label = t(`encoder.${state}`);
  return label === `encoder.${state}` ? state : label;
}

/** « Last refused publish: key …1234, 14:02, ended live », or null when none was refused. */
export function refusedPublish(refused) {
  if (!refused) return null;
  return el("p", { class: "notice", id: "refused-publish", role: "status",
    text: t("control.refused", { key: refused.key, when: formatTime(refused.at),
      reason: t(`refused.${refused.reason}`) }) });
}

export function stopControl() {
  socket?.close();
  socket = null;
  clearInterval(sampler);
}

export async function showControl(view, streamId) {
  const live = `/api/live/streams/${streamId}`;
  const state = new LiveState();
  const aggregated = await api(live);
  let stream = aggregated.stream;
  let adminProducts = aggregated.products;
  const samples = [];
  const $ = (id) => view.querySelector(`#${id}`);

  const act = async (action) => {
    try {
      notice("");
      return await action();
    } catch (error) {
      notice(t("error.generic", { detail: error.detail ?? error.message }));
      return undefined;
    }
  };

  // --- the live and its lifecycle ---------------------------------------------------------------
  const renderHeader = () => {
    // replaceChildren() writes a null as the text "null": the parts a live lacks are left out.
    $("control-head").replaceChildren(...[
      el("div", { class: "row" },
        el("h1", { id: "control-title", text: stream.title }),
        el("span", { class: `badge ${stream.status}`, text: t(`status.${stream.status}`) }),
        el("span", { class: "spacer" }),
        stream.status === "scheduled" ? el("button", { type: "button", class: "primary", id: "start",
          text: t("control.start"), onclick: () => transition("start") }) : null,
        stream.status === "live" ? el("button", { type: "button", class: "danger", id: "end",
          text: t("control.end"), onclick: () => transition("end") }) : null,
        el("a", { href: `/live/${streamId}`, target: "_blank", text: t("admin.watch") })),
      stream.provider_state ? el("p", { class: "muted", id: "encoder-state",
        text: t("control.encoder", { state: encoderState(stream.provider_state) }) }) : null,
      refusedPublish(stream.last_refused_publish),
      stream.stream_key ? copyField(t("obs.server"), stream.obs?.server ?? stream.ingest_url, "obs-server") : null,
      stream.stream_key ? copyField(t("obs.key"), stream.obs?.stream_key ?? stream.stream_key, "obs-key") : null,
    ].filter(Boolean));
  };
  const transition = (verb) => act(async () => {
    stream = await api(`${live}/${verb}`, { method: "POST" });
    renderHeader();
  });

  // --- figures ----------------------------------------------------------------------------------
  let analytics = null;
  const loadAnalytics = async () => {
    try {
      analytics = await api(`${live}/analytics`);
    } catch {
      analytics = null; // no analytics service yet (404) or away: those figures are left out
    }
  };
  // The export needs the admin's token, so it is fetched, then handed to the browser as a file.
  const downloadCsv = async () => {
    const response = await fetch(`${live}/analytics.csv`, { headers: { Authorization: `Bearer ${token()}` } });
    if (!response.ok) return notice(t("fig.csv.failed"));
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: `vitrine-${streamId}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    URL.revokeObjectURL(url);
  };
  const figure = (label, value, id) => el("div", { class: "figure" },
    el("dt", { text: label }), el("dd", { id, text: String(value ?? 0) }));
  const renderFigures = () => {
    const v = state.viewers;
    const clicks = analytics?.products?.clicks;
    const carts = analytics?.products?.add_to_cart;
    const revenue = analytics?.sales?.revenue;
    // The server's per-minute series once there are two minutes of it, else this page's samples.
    const perMinute = (analytics?.series ?? []).map((row) => row.viewers);
    const serverSeries = perMinute.length >= 2;
    const line = serverSeries ? perMinute : samples;
    const points = line.map((n, i) => `${(i / Math.max(1, line.length - 1)) * 300},${78 - (n / Math.max(1, ...line)) * 74}`);
    $("figures").replaceChildren(
      el("h2", { text: t("control.figures") }),
      el("dl", { class: "figures" },
        figure(t("fig.current"), v.current, "fig-current"), figure(t("fig.peak"), v.peak, "fig-peak"),
        figure(t("fig.total"), v.total, "fig-total"),
        typeof clicks === "number" ? figure(t("fig.clicks"), clicks, "fig-clicks") : null,
        typeof carts === "number" ? figure(t("fig.carts"), carts, "fig-carts") : null,
        revenue != null ? figure(t("fig.revenue"), `${revenue} ${analytics.sales.currency ?? ""}`, "fig-revenue") : null));
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 300 80");
    svg.setAttribute("class", "chart");
    svg.setAttribute("role", "img");
    const caption = t(serverSeries ? "fig.series" : "fig.chart");
    svg.setAttribute("aria-label", `${caption}: ${line.join(", ")}`);
    const polyline = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    polyline.setAttribute("points", points.join(" "));
    svg.append(polyline);
    $("figures").append(el("p", { class: "help", text: caption }), svg);
    if (analytics) {
      $("figures").append(el("p", {}, el("button", { type: "button", id: "export-csv", text: t("fig.csv"), onclick: downloadCsv })));
    }
  };
  const sample = () => {
    samples.push(state.viewers.current);
    if (samples.length > CHART_POINTS) samples.shift();
    renderFigures();
  };

  // --- products ---------------------------------------------------------------------------------
  const reloadProducts = async () => {
    adminProducts = await api(`${live}/products`); // admins also see hidden products, promo codes
    renderProducts();
  };
  let reloadTimer = null;
  const productsChanged = () => {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => act(reloadProducts), 100);
  };
  const move = (index, by) => act(async () => {
    const ids = adminProducts.map((p) => p.product_id);
    const [id] = ids.splice(index, 1);
    ids.splice(index + by, 0, id);
    adminProducts = await api(`${live}/products/order`, { method: "PUT", body: { product_ids: ids } });
    renderProducts();
  });
  const renderProducts = () => {
    const list = $("live-products");
    list.replaceChildren(...adminProducts.map((p, i) => {
      const fields = el("form", { class: "fields" },
        el("label", {}, t("control.liveprice"),
          el("input", { name: "special_price", inputmode: "decimal", value: p.live_price ?? "" })),
        el("label", {}, t("control.promo"),
          el("input", { name: "promo_code", maxlength: "64", value: p.promo_code ?? "" })),
        el("button", { type: "submit", class: "small", text: t("control.save") }));
      fields.addEventListener("submit", (event) => {
        event.preventDefault();
        const body = { product_id: p.product_id };
        if (fields.elements.special_price.value.trim()) body.special_price = fields.elements.special_price.value.trim();
        if (fields.elements.promo_code.value.trim()) body.promo_code = fields.elements.promo_code.value.trim();
        act(() => api(`${live}/products`, { method: "POST", body }));
      });
      return el("li", { class: "live-product", dataset: { productId: p.product_id } },
        el("div", { class: "row" },
          el("strong", { text: p.name }),
          el("span", { text: formatPrice(p.live_price ?? p.price, p.currency) }),
          p.is_featured ? el("span", { class: "badge live", text: t("control.featured") }) : null,
          p.visible === false ? el("span", { class: "badge", text: t("control.hidden") }) : null),
        fields,
        el("div", { class: "actions" },
          el("button", { type: "button", class: "small", text: "↑", disabled: i === 0,
            "aria-label": t("control.up", { name: p.name }), onclick: () => move(i, -1) }),
          el("button", { type: "button", class: "small", text: "↓", disabled: i === adminProducts.length - 1,
            "aria-label": t("control.down", { name: p.name }), onclick: () => move(i, 1) }),
          p.is_featured
            ? el("button", { type: "button", class: "small", text: t("control.unfeature"),
              onclick: () => act(() => api(`${live}/featured`, { method: "DELETE" })) })
            : el("button", { type: "button", class: "small primary feature", text: t("control.feature"),
              "aria-label": `${t("control.feature")} — ${p.name}`,
              onclick: () => act(() => api(`${live}/products/${p.product_id}/feature`, { method: "POST" })) }),
          el("button", { type: "button", class: "small danger", text: t("control.remove"),
            "aria-label": `${t("control.remove")} — ${p.name}`,
            onclick: () => act(() => api(`${live}/products/${p.product_id}`, { method: "DELETE" })) })));
    }));
  };
  const search = async (query) => {
    const page = await api(`/api/catalog/products?search=${encodeURIComponent(query)}&limit=20`);
    const inLive = new Set(adminProducts.map((p) => p.product_id));
    $("search-results").replaceChildren(...(page.items.length ? page.items.map((product) =>
      el("li", { class: "row", dataset: { productId: product.id } },
        el("span", { text: product.name }),
        el("span", { class: "muted", text: formatPrice(product.price, product.currency) }),
        el("span", { class: "spacer" }),
        el("button", { type: "button", class: "small", text: t("control.add"), disabled: inLive.has(product.id),
          "aria-label": `${t("control.add")} — ${product.name}`,
          onclick: (event) => act(async () => {
            event.currentTarget.disabled = true;
            await api(`${live}/products`, { method: "POST", body: { product_id: product.id } });
          }) })))
      : [el("li", { class: "muted", text: t("control.noresults") })]));
  };

  const offer = offerPanel(live, act);
  const reminders = remindersPanel(live, act);

  // --- chat moderation --------------------------------------------------------------------------
  const options = await api(`${live}/chat`).catch(() => ({ enabled: true, slow_mode_s: 0 }));
  const setOptions = (body) => act(async () => Object.assign(options, await api(`${live}/chat`, { method: "PUT", body })));
  const moderate = (message) => {
    const call = (path, method, body) => act(() => api(path, { method, body }));
    const pinned = state.pinned.has(message.id);
    return el("div", { class: "actions" },
      el("button", { type: "button", class: "small danger", text: t("mod.delete"),
        "aria-label": `${t("mod.delete")} — ${message.display_name}: ${message.message}`,
        onclick: () => call(`/api/live/chat/${message.id}`, "DELETE") }),
      el("button", { type: "button", class: "small", text: pinned ? t("mod.unpin") : t("mod.pin"),
        onclick: () => call(`/api/live/chat/${message.id}/pin`, pinned ? "DELETE" : "POST") }),
      el("button", { type: "button", class: "small", text: t("mod.timeout"),
        onclick: () => call("/api/live/chat/bans", "POST",
          { user_id: message.user_id, stream_id: streamId, scope: "live", duration_s: TIMEOUT_S }) }),
      el("button", { type: "button", class: "small danger", text: t("mod.ban"),
        onclick: () => confirm(t("mod.confirmban", { name: message.display_name })) &&
          call("/api/live/chat/bans", "POST", { user_id: message.user_id, stream_id: streamId, scope: "live" }) }));
  };
  const renderChat = () => {
    const item = (m) => el("li", { class: "mod-message", dataset: { messageId: m.id } },
      el("div", {}, state.pinned.has(m.id) ? el("span", { class: "tag", text: t("chat.pinned") }) : null,
        el("strong", { text: `${m.display_name} ` }), el("span", { class: "text", text: m.message }),
        el("time", { class: "muted", datetime: m.created_at, text: ` ${formatTime(m.created_at)}` })),
      moderate(m));
    const messages = [...state.messages.values()].reverse(); // newest first for moderators
    $("mod-messages").replaceChildren(...messages.map(item));
  };

  view.replaceChildren(el("div", { class: "control" },
    el("section", { id: "control-head", class: "wide", "aria-labelledby": "control-title" }),
    el("section", { id: "figures", "aria-live": "off" }),
    offer.section,
    reminders.section,
    el("section", { "aria-labelledby": "chat-mod-title" },
      el("h2", { id: "chat-mod-title", text: t("control.chat") }),
      el("label", { class: "row checkbox" }, el("input", { type: "checkbox", id: "chat-enabled", checked: options.enabled,
        onchange: (e) => setOptions({ enabled: e.target.checked }) }), t("control.chaton")),
      el("form", { id: "slow-form", class: "row" },
        el("label", { for: "slow-mode", text: t("control.slow") }),
        el("input", { id: "slow-mode", type: "number", min: "0", max: "3600", value: String(options.slow_mode_s ?? 0) }),
        el("button", { type: "submit", class: "small", text: t("control.apply") })),
      el("ul", { id: "mod-messages", class: "plain", "aria-live": "polite" })),
    el("section", { class: "wide", "aria-labelledby": "products-heading" },
      el("h2", { id: "products-heading", text: t("control.products") }),
      el("form", { id: "search-form", class: "row", role: "search" },
        el("label", { for: "catalog-search", class: "visually-hidden", text: t("control.search") }),
        el("input", { id: "catalog-search", type: "search", placeholder: t("control.search") }),
        el("button", { type: "submit", text: t("control.search.go") })),
      el("ul", { id: "search-results", class: "plain", "aria-live": "polite" }),
      el("ol", { id: "live-products", class: "plain" }))));
  $("slow-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setOptions({ slow_mode_s: Number($("slow-mode").value) || 0 });
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act(() => search($("catalog-search").value.trim()));
  });

  if (!view.isConnected) return; // the admin went elsewhere meanwhile
  state.applySnapshot(aggregated);
  renderHeader();
  renderProducts();
  renderChat();
  await Promise.all([loadAnalytics(), offer.refresh(), reminders.refresh()]);
  if (!view.isConnected) return;
  sample();
  sampler = setInterval(async () => {
    if (analytics !== null) await loadAnalytics();
    await offer.refresh();
    await reminders.refresh();
    sample();
  }, 5_000);
  socket = watchLive(streamId, {
    token,
    onSnapshot: (data) => {
      state.applySnapshot(data);
      renderChat();
      renderFigures();
      productsChanged();
    },
    onEvent: (frame) => {
      const parts = state.apply(frame);
      if (parts.includes("chat")) renderChat();
      if (parts.includes("viewers")) renderFigures();
      if (parts.includes("products")) productsChanged();
      if (frame.type.startsWith("offer.")) offer.refresh();
      if (frame.type.startsWith("stream.") && frame.data.stream) {
        stream = { ...stream, ...frame.data.stream };
        renderHeader();
      }
    },
  });
  window.vitrine = { socket, state };
}
