// The shop: where the catalog comes from (its settings form), and the local catalog's products
// (made, changed and deleted here; a shop's products are changed in the shop).

import { api } from "./api.js";
import { formatPrice, t } from "./i18n.js";
import { el } from "./livestate.js";
import { field, readAll, statusLine } from "./settings_form.js";

// services/products/schemas.py: CatalogSettingsWrite and its WooCommerceWrite, ShopifyWrite.
const HTTPS = "https://\\S+";
const SHOPS = {
  local: [],
  woocommerce: [{ name: "url", kind: "url", required: true, pattern: HTTPS },
    { name: "consumer_key", kind: "secret", required: true },
    { name: "consumer_secret", kind: "secret", required: true }],
  shopify: [{ name: "url", kind: "url", required: true, pattern: HTTPS },
    { name: "access_token", kind: "secret", required: true },
    { name: "storefront_url", kind: "url", pattern: HTTPS }],
};
const COMMON = [
  { name: "checkout_url_template", kind: "url", pattern: "https?://\\S+" },
  { name: "offer_window_h", kind: "number", required: true, min: 0, max: 720, step: 1 },
];

/** What the settings say of a shop, to send back: its addresses (its keys stay as stored). */
function kept(shop) {
  if (!shop) return null;
  const { url, storefront_url: storefront } = shop;
  return storefront === undefined ? { url } : { url, storefront_url: storefront };
}

/** The catalog's source (local, WooCommerce, Shopify), its keys, checkout link and offer window. */
export async function shopSettings() {
  const settings = await api("/api/catalog/settings");
  const form = el("form", { id: "shop-form" });
  const status = statusLine("shop-status");
  let shopFields = [];
  let commonFields = [];
  const render = (source) => {
    shopFields = (SHOPS[source] ?? []).map((spec) =>
      field(spec, settings[source]?.[spec.name], { group: source, prefix: source }));
    commonFields = COMMON.map((spec) => field(spec, settings[spec.name], { group: "shop", prefix: "shop" }));
    form.replaceChildren(
      el("label", { for: "source", text: t("shop.source") }),
      el("select", { id: "source", "aria-describedby": "source-help", onchange: (e) => render(e.target.value) },
        Object.keys(SHOPS).map((s) => el("option", { value: s, selected: s === source, text: t(`source.${s}`) }))),
      el("p", { class: "help", id: "source-help", text: t(`h.source.${source}`) }),
      shopFields.length ? el("fieldset", {}, el("legend", { text: t(`source.${source}`) }),
        shopFields.map((f) => f.node)) : "",
      el("fieldset", {}, el("legend", { text: t("shop.checkout") }), commonFields.map((f) => f.node)),
      el("p", {}, el("button", { type: "submit", class: "primary", text: t("shop.save") })), status);
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const source = form.elements.source.value;
    const body = { source, woocommerce: kept(settings.woocommerce), shopify: kept(settings.shopify),
      ...readAll(commonFields) };
    if (source !== "local") body[source] = readAll(shopFields); // secrets only when retyped
    try {
      Object.assign(settings, await api("/api/catalog/settings", { method: "PUT", body }));
      render(settings.source);
      status.say(t("settings.saved"), true);
    } catch (error) {
      status.say(t("error.generic", { detail: error.detail }), false);
    }
  });
  render(settings.source);
  return el("section", { id: "shop-settings", "aria-labelledby": "shop-heading" },
    el("h2", { id: "shop-heading", text: t("shop.title") }), form);
}

// services/products/schemas.py: ProductCreate / ProductUpdate.
const PRODUCT_FIELDS = [
  { name: "name", required: true, maxlength: "200" },
  { name: "price", type: "number", required: true, min: "0", step: "0.01", inputmode: "decimal" },
  { name: "currency", required: true, pattern: "[A-Z]{3}", maxlength: "3", autocapitalize: "characters" },
  { name: "stock", type: "number", min: "0", max: "10000000", step: "1", inputmode: "numeric" },
  { name: "sku", maxlength: "64" },
];
const PRODUCT_URL = { name: "product_url", pattern: "https?://\\S+", maxlength: "2048", inputmode: "url" };
const PAGE = 50;

/** What the product form holds, as the API takes it (null clears an optional field). */
function productValues(form) {
  const value = (name) => form.elements[name].value.trim();
  const stock = form.elements.stock.valueAsNumber;
  return {
    name: value("name"),
    description: value("description") || null,
    price: value("price"), // a string: the exact decimal, never a binary float
    currency: value("currency").toUpperCase(),
    images: value("images").split(/\s+/).filter(Boolean),
    stock: Number.isNaN(stock) ? null : stock,
    sku: value("sku") || null,
    product_url: value("product_url") || null,
  };
}

/** The fields `values` changes in `product` (an update sends only those). */
function changes(product, values) {
  const same = (name) => name === "price" ? Number(product.price) === Number(values.price)
    : JSON.stringify(product[name] ?? null) === JSON.stringify(values[name]);
  return Object.fromEntries(Object.entries(values).filter(([name]) => !same(name)));
}

function productForm(product, { currency, onDone }) {
  const input = (spec) => {
    const { name, ...attrs } = spec;
    const help = t(`catalog.${name}.help`);
    return el("div", { class: "field" },
      el("label", { for: `product-${name}`, text: t(`catalog.${name}`) }),
      el("input", { id: `product-${name}`, name, value: product?.[name] ?? (name === "currency" ? currency : ""),
        "aria-describedby": help === `catalog.${name}.help` ? undefined : `product-${name}-help`, ...attrs }),
      help === `catalog.${name}.help` ? "" : el("p", { class: "help", id: `product-${name}-help`, text: help }));
  };
  const status = statusLine("product-status");
  const form = el("form", { id: "product-form", class: "product-form" },
    el("h2", { id: "product-form-title", text: t(product ? "catalog.edit.title" : "catalog.new") }),
    el("div", { class: "grid" }, PRODUCT_FIELDS.map(input)),
    input(PRODUCT_URL),
    el("label", { for: "product-description", text: t("catalog.description") }),
    el("textarea", { id: "product-description", name: "description", rows: "3", maxlength: "5000",
      text: product?.description ?? "" }),
    el("label", { for: "product-images", text: t("catalog.images") }),
    el("textarea", { id: "product-images", name: "images", rows: "2", "aria-describedby": "product-images-help",
      spellcheck: "false", text: (product?.images ?? []).join("\n") }),
    el("p", { class: "help", id: "product-images-help", text: t("catalog.images.help") }),
    el("p", { class: "row" },
      el("button", { type: "submit", class: "primary", text: t(product ? "catalog.save" : "catalog.create") }),
      el("button", { type: "button", text: t("catalog.cancel"), onclick: () => onDone(null, null) })),
    status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = productValues(form);
    try {
      if (!product) {
        onDone(t("catalog.created"), await api("/api/catalog/products", { method: "POST", body: values, expect: 201 }));
        return;
      }
      const body = changes(product, values);
      onDone(t("catalog.saved"), Object.keys(body).length
        ? await api(`/api/catalog/products/${product.id}`, { method: "PUT", body }) : product);
    } catch (error) {
      status.say(t("error.generic", { detail: error.detail }), false);
    }
  });
  return form;
}

function productItem(product, { editable, onEdit, onDelete }) {
  const image = product.images[0];
  return el("li", { class: "catalog-item", dataset: { productId: product.id } },
    image ? el("img", { src: image, alt: "", loading: "lazy", // an image gone: the empty square
      onerror: (e) => e.target.replaceWith(el("span", { class: "no-image" })) }) : el("span", { class: "no-image" }),
    el("div", { class: "catalog-main" },
      el("strong", { class: "catalog-name", text: product.name }),
      el("span", { class: "muted", text: [formatPrice(product.price, product.currency),
        product.stock === null ? t("catalog.untracked") : t("catalog.instock", { n: product.stock }),
        product.sku].filter((part) => part !== null && part !== "").join(" · ") })),
    editable ? el("div", { class: "actions" },
      el("button", { type: "button", class: "small", text: t("catalog.edit"),
        "aria-label": `${t("catalog.edit")} — ${product.name}`, onclick: () => onEdit(product) }),
      el("button", { type: "button", class: "small danger", text: t("catalog.delete"),
        "aria-label": `${t("catalog.delete")} — ${product.name}`, onclick: () => onDelete(product) })) : "");
}

/** The catalog tab: search, then the products; the local catalog's can be made, changed, deleted. */
export async function showCatalog(view) {
  const settings = await api("/api/catalog/settings");
  const editable = settings.source === "local";
  const list = el("ul", { id: "catalog-list", class: "plain catalog-list", "aria-live": "polite" });
  const editor = el("div", { id: "product-editor" });
  const status = statusLine("catalog-status");
  const more = el("button", { type: "button", class: "small", hidden: true, text: t("catalog.more") });
  const count = el("p", { class: "muted", id: "catalog-count" });
  const search = el("input", { id: "catalog-filter", type: "search", placeholder: t("catalog.search") });
  const newButton = el("button", { type: "button", class: "primary", id: "new-product", text: t("catalog.new"),
    hidden: !editable, onclick: () => edit(null) });
  let shown = [];
  let currency = "EUR";

  // `saved`, just made or changed, is shown first when its name sorts it beyond the first page.
  let cursor = null; // where the next page starts
  const load = async (next = false, saved = null) => {
    const query = new URLSearchParams({ limit: PAGE });
    if (next && cursor) query.set("cursor", cursor);
    if (search.value.trim()) query.set("search", search.value.trim());
    const page = await api(`/api/catalog/products?${query}`);
    cursor = page.next_cursor;
    shown = next ? [...shown, ...page.items] : page.items;
    if (saved && !shown.some((p) => p.id === saved.id)) shown = [saved, ...shown];
    currency = shown[0]?.currency ?? currency;
    list.replaceChildren(...(shown.length ? shown.map((p) => productItem(p, { editable, onEdit: edit, onDelete: remove }))
      : [el("li", { class: "muted", text: t(search.value.trim() ? "control.noresults" : "catalog.empty") })]));
    count.textContent = t("catalog.count", { n: page.total });
    count.hidden = !shown.length; // the list says it is empty
    more.hidden = !cursor;
  };
  const done = async (message, saved, focus) => {
    editor.replaceChildren();
    if (message) { await load(false, saved); status.say(message, true); }
    const item = saved && list.querySelector(`[data-product-id="${saved.id}"] button`);
    (item || (focus?.isConnected ? focus : newButton)).focus();
  };
  function edit(product) {
    const back = document.activeElement;
    const form = productForm(product, { currency, onDone: (message, saved) => done(message, saved, back) });
    editor.replaceChildren(form);
    status.textContent = "";
    form.elements.name.focus();
  }
  async function remove(product) {
    if (!confirm(t("catalog.confirmdelete", { name: product.name }))) return;
    try {
      await api(`/api/catalog/products/${product.id}`, { method: "DELETE" });
      await load();
      status.say(t("catalog.deleted", { name: product.name }), true);
    } catch (error) {
      status.say(t("error.generic", { detail: error.detail }), false);
    }
  }
  more.addEventListener("click", () => load(true));
  const filter = el("form", { class: "row", role: "search", onsubmit: (e) => { e.preventDefault(); load(); } },
    el("label", { for: "catalog-filter", class: "visually-hidden", text: t("control.search") }), search,
    el("button", { type: "submit", text: t("control.search.go") }));
  view.replaceChildren(el("section", { "aria-labelledby": "catalog-heading" },
    el("div", { class: "row" }, el("h1", { id: "catalog-heading", text: t("admin.catalog") }),
      el("span", { class: "spacer" }), newButton),
    editable ? "" : el("p", { class: "notice", id: "catalog-shop", text: t("catalog.fromshop", { shop: t(`source.${settings.source}`) }) }),
    editor, status, filter, count, list, more));
  await load();
}
