// The chat as a viewer reads it, live or in a replay.

import { formatTime, t } from "./i18n.js";
import { el } from "./livestate.js";

function messageItem(message) {
  return el("li", { class: "message", dataset: { messageId: message.id } },
    el("span", { class: "author", text: message.display_name }),
    el("span", { class: "text", text: message.message }),
    el("time", { datetime: message.created_at, text: formatTime(message.created_at) }));
}

/** Pinned messages on top, then the log; only what changed is touched, so screen readers
 * announce new messages only. */
export function renderChatLog({ state, pinned, log, fresh }) {
  pinned.replaceChildren(...[...state.pinned.values()].map((m) =>
    el("li", { class: "pinned-message", dataset: { messageId: m.id } },
      el("span", { class: "tag", text: t("chat.pinned") }),
      el("span", { class: "author", text: m.display_name }),
      el("span", { class: "text", text: m.message }))));
  pinned.hidden = state.pinned.size === 0;
  const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  if (fresh) log.replaceChildren();
  const shown = new Map([...log.querySelectorAll("li.message")].map((li) => [li.dataset.messageId, li]));
  for (const [id, li] of shown) if (!state.messages.has(id)) li.remove();
  for (const [id, message] of state.messages) if (!shown.has(id)) log.append(messageItem(message));
  log.querySelector(".empty")?.remove();
  if (!state.messages.size) log.append(el("li", { class: "empty muted", text: t("chat.empty") }));
  if (nearBottom || fresh) log.scrollTop = log.scrollHeight;
}
