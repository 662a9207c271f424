// The live's state comes from the SDK (clients/js, served at /static/sdk), shared by the viewer
// page and the control room; `el` builds the pages' DOM.

export { LiveState } from "../sdk/index.js";

/** A DOM element: `el("li", {class: "x", text: "…"}, child …)`; text is always text, never HTML. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}
