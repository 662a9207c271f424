// French and English labels: picked from navigator.language, switchable, remembered.

const LABELS = {
  fr: {
    "lang.switch": "English", "lang.switch.label": "Switch to English",
    "nav.skip": "Aller au contenu",
    "live.badge": "EN DIRECT", "live.scheduled": "Bientôt", "live.ended": "Terminé",
    "live.replay": "Rediffusion", "live.aired": "Diffusé le {when}",
    "live.replaysoon": "La rediffusion arrive bientôt : elle s'affichera ici dès qu'elle sera prête.",
    "live.none": "Aucun live en ce moment. Revenez bientôt !",
    "live.notfound": "Ce live n'existe pas ou n'est plus disponible.",
    "live.starts": "Début prévu : {when}",
    "live.waiting": "La vidéo démarre dès que l'animateur est en direct.",
    "live.viewers": "{n} spectateur(s)", "live.viewers.label": "Spectateurs actuels",
    "live.reconnecting": "Reconnexion…", "live.online": "Connecté",
    "player.label": "Vidéo du live",
    "upcoming.title": "Prochains lives", "upcoming.undated": "Date à venir",
    "follow.title": "Être prévenu(e) de tous les lives", "follow.email": "Adresse e-mail",
    "follow.submit": "Suivre la boutique",
    "follow.help": "Un e-mail avant chaque live ; un clic suffit pour arrêter.",
    "featured.title": "Produit présenté", "featured.none": "Aucun produit présenté pour l'instant.",
    "featured.now": "Maintenant : {name}",
    "product.promo": "Code promo : {code}", "product.add": "Ajouter au panier",
    "product.adding": "Ajout…", "product.added": "Ajouté au panier ✓",
    "product.view": "Voir {name}",
    "product.livesoon": "{price} pendant le live", "product.left": "Plus que {n}", "product.soldout": "Épuisé", "product.add.short": "Ajouter",
    "products.title": "Produits du live", "products.empty": "Aucun produit pour ce live.",
    "cart.open": "Panier", "cart.open.label": "Panier : {n} article(s)",
    "cart.title": "Votre panier", "cart.items": "{n} article(s)", "cart.close": "Fermer le panier",
    "cart.empty": "Votre panier est vide. Ajoutez un produit du live : il vous attendra ici.",
    "cart.total": "Total", "cart.checkout": "Passer commande",
    "cart.nocheckout": "Cette boutique n'a pas encore de paiement en ligne.",
    "cart.quantity": "Quantité de {name}", "cart.less": "Diminuer la quantité de {name}",
    "cart.more": "Augmenter la quantité de {name}", "cart.remove": "Retirer",
    "cart.remove.label": "Retirer {name} du panier",
    "cart.regular": "Prix habituel :", "cart.now": "prix du live :",
    "cart.error": "Impossible d'ajouter au panier : {detail}",
    "cart.change.error": "Le panier n'a pas pu être modifié : {detail}",
    "cart.claim.error": "Les articles ajoutés avant la connexion n'ont pas rejoint votre panier : {detail}",
    "cart.soldout": "épuisé", "cart.only": "plus que {n} en stock",
    "cart.held": ", dont {n} déjà dans votre panier",
    "chat.title": "Chat", "chat.empty": "Aucun message pour le moment.",
    "chat.pinned": "Épinglé", "chat.input": "Votre message", "chat.send": "Envoyer",
    "chat.signin": "Connectez-vous pour participer au chat.",
    "chat.replay": "Rediffusion : le chat du live se relit, il ne s'écrit plus.",
    "chat.slow": "Mode lent : réessayez dans {s} s.",
    "chat.held": "Votre message sera publié après validation par un modérateur.",
    "chat.error": "Message refusé : {detail}", "chat.off": "Le chat est fermé.",
    "chat.banned": "Vous ne pouvez plus écrire dans ce chat.",
    "chat.offline": "Hors ligne : le message sera à renvoyer une fois reconnecté.",
    "auth.signin": "Se connecter", "auth.signout": "Se déconnecter",
    "auth.as": "Connecté : {name}", "auth.title": "Connexion",
    "auth.token": "Jeton (JWT)", "auth.token.help": "Collez un jeton émis par votre boutique ou par « vitrine token ».",
    "auth.use": "Utiliser ce jeton", "auth.dev": "Connexion de développement",
    "auth.dev.help": "Disponible uniquement en développement et en test.",
    "auth.name": "Nom affiché", "auth.role": "Rôle", "auth.role.viewer": "Spectateur",
    "auth.role.moderator": "Modérateur", "auth.role.admin": "Administrateur",
    "auth.close": "Fermer", "auth.invalid": "Ce jeton n'est pas lisible.",
    "admin.title": "Console Vitrine", "admin.lives": "Lives", "admin.settings": "Configuration",
    "admin.new": "Nouveau Live", "admin.refresh": "Actualiser",
    "admin.needadmin": "Cette console est réservée aux administrateurs. Connectez-vous avec un compte administrateur.",
    "admin.empty": "Aucun live pour l'instant.", "admin.open": "Contrôle",
    "admin.watch": "Page spectateur",
    "status.scheduled": "Programmé", "status.live": "En direct", "status.ended": "Terminé",
    "new.title": "Titre du live", "new.description": "Description", "new.date": "Date et heure prévues",
    "new.create": "Créer le Live", "new.created": "Live créé. Configurez OBS (Paramètres → Stream → Service : Personnalisé) :",
    "obs.server": "Serveur", "obs.key": "Clé de stream", "copy": "Copier", "copied": "Copié ✓",
    "control.start": "Démarrer le Live", "control.end": "Terminer le Live",
    "control.figures": "Chiffres en direct", "fig.current": "Spectateurs", "fig.peak": "Pic",
    "fig.total": "Vues totales", "fig.clicks": "Clics produits", "fig.carts": "Ajouts au panier",
    "fig.chart": "Spectateurs depuis l'ouverture de cette page",
    "fig.series": "Spectateurs par minute", "fig.revenue": "Chiffre d'affaires",
    "fig.csv": "Exporter les chiffres (CSV)", "fig.csv.failed": "L'export a échoué.",
    "control.encoder": "Encodeur : {state}",
    "control.refused": "Dernière publication refusée : clé {key}, {when}, {reason}",
    "encoder.connected": "connecté", "encoder.disconnected": "déconnecté", "encoder.refused": "publication refusée",
    "encoder.stop_failed": "non déconnecté (à arrêter dans OBS)", "encoder.failed": "en échec",
    "offer.title": "Offre du live", "offer.code": "Code", "offer.code.auto": "généré au démarrage",
    "offer.percent": "Remise en % (sinon les prix live)", "offer.percent.none": "prix live",
    "offer.window": "Valable après le live (heures)", "offer.until": "jusqu'au {when}",
    "offer.status.pending": "En attente du live", "offer.status.open": "Active en boutique",
    "offer.status.closed": "Terminée", "offer.products": "{n} produit(s)",
    "offer.synced": "en boutique", "offer.pending": "envoi…", "offer.failing": "nouvel essai…",
    "offer.withdrawn": "retiré", "offer.orders": "Commandes du live",
    "offer.noorders": "Aucune commande pour l'instant.",
    "offer.via.cart": "panier", "offer.via.coupon": "code du live", "offer.via.promo_code": "code promo",
    "offer.via.session": "session",
    "offer.notinshop": "Offre pas encore créée en boutique (nouvel essai en cours) : {reason}",
    "offer.notwithdrawn": "Offre pas encore retirée de la boutique (nouvel essai en cours) : {reason}",
    "control.products": "Produits du live", "control.search": "Rechercher dans le catalogue",
    "control.search.go": "Rechercher", "control.add": "Ajouter", "control.feature": "Mettre en vedette",
    "control.unfeature": "Retirer de la vedette", "control.remove": "Retirer",
    "control.up": "Monter {name}", "control.down": "Descendre {name}",
    "control.liveprice": "Prix live", "control.promo": "Code promo", "control.save": "Enregistrer",
    "control.featured": "En vedette", "control.hidden": "Masqué",
    "control.noresults": "Aucun produit trouvé.",
    "control.chat": "Modération du chat", "control.chaton": "Chat ouvert",
    "control.slow": "Mode lent (secondes, 0 = désactivé)", "control.apply": "Appliquer",
    "mod.delete": "Supprimer", "mod.pin": "Épingler", "mod.unpin": "Désépingler",
    "mod.timeout": "Exclure 5 min", "mod.ban": "Bannir", "mod.done": "Fait.",
    "mod.confirmban": "Bannir {name} de ce live ?",
    "admin.nocheckout": "Pas encore de paiement : les spectateurs remplissent un panier qu'ils ne peuvent pas régler. Connectez WooCommerce ou Shopify, ou donnez au catalogue local un modèle de lien de commande (checkout_url_template, PUT /api/catalog/settings).",
    "refused.unknown key": "clé inconnue", "refused.rotated key": "clé remplacée",
    "refused.ended live": "live terminé", "refused.wrong app": "mauvaise application RTMP",
    "refused.key of a live on another platform": "clé d'un live sur une autre plateforme",
    "settings.platform": "Plateforme vidéo", "settings.config": "Paramètres",
    "settings.secrets": "Clés secrètes (masquées ; laissez tel quel pour conserver)",
    "settings.key": "Nom", "settings.value": "Valeur", "settings.addrow": "Ajouter une ligne",
    "settings.save": "Enregistrer la configuration", "settings.saved": "Configuration enregistrée.",
    "settings.unsupported": "(bientôt)",
    "error.generic": "Une erreur est survenue : {detail}", "error.network": "Réseau indisponible.",
  },
  en: {
    "lang.switch": "Français", "lang.switch.label": "Passer en français",
    "nav.skip": "Skip to content",
    "live.badge": "LIVE", "live.scheduled": "Coming up", "live.ended": "Ended",
    "live.replay": "Replay", "live.aired": "Aired {when}",
    "live.replaysoon": "The replay is coming soon: it will show here as soon as it is ready.",
    "live.none": "No live right now. Come back soon!",
    "live.notfound": "This live does not exist or is no longer available.",
    "live.starts": "Starts: {when}",
    "live.waiting": "The video starts as soon as the host goes live.",
    "live.viewers": "{n} watching", "live.viewers.label": "Current viewers",
    "live.reconnecting": "Reconnecting…", "live.online": "Connected",
    "player.label": "Live video",
    "upcoming.title": "Upcoming lives", "upcoming.undated": "Date to come",
    "follow.title": "Be told of every live", "follow.email": "E-mail address",
    "follow.submit": "Follow the shop",
    "follow.help": "An e-mail before each live; one click stops them.",
    "featured.title": "Featured product", "featured.none": "No product featured yet.",
    "featured.now": "Now: {name}",
    "product.promo": "Promo code: {code}", "product.add": "Add to cart",
    "product.adding": "Adding…", "product.added": "Added to cart ✓",
    "product.view": "View {name}",
    "product.livesoon": "{price} during the live", "product.left": "Only {n} left", "product.soldout": "Sold out", "product.add.short": "Add",
    "products.title": "Products in this live", "products.empty": "No products in this live.",
    "cart.open": "Cart", "cart.open.label": "Cart: {n} item(s)",
    "cart.title": "Your cart", "cart.items": "{n} item(s)", "cart.close": "Close the cart",
    "cart.empty": "Your cart is empty. Add a product from the live and it will wait for you here.",
    "cart.total": "Total", "cart.checkout": "Checkout",
    "cart.nocheckout": "This shop has no online checkout yet.",
    "cart.quantity": "Quantity of {name}", "cart.less": "Decrease the quantity of {name}",
    "cart.more": "Increase the quantity of {name}", "cart.remove": "Remove",
    "cart.remove.label": "Remove {name} from the cart",
    "cart.regular": "Usual price:", "cart.now": "live price:",
    "cart.error": "Could not add to cart: {detail}",
    "cart.change.error": "The cart could not be changed: {detail}",
    "cart.claim.error": "The items added before you signed in could not join your cart: {detail}",
    "cart.soldout": "sold out", "cart.only": "only {n} left in stock",
    "cart.held": ", {n} already in your cart",
    "chat.title": "Chat", "chat.empty": "No messages yet.",
    "chat.pinned": "Pinned", "chat.input": "Your message", "chat.send": "Send",
    "chat.signin": "Sign in to join the chat.",
    "chat.replay": "Replay: the live's chat can be read, not written to.",
    "chat.slow": "Slow mode: try again in {s} s.",
    "chat.held": "Your message will appear once a moderator approves it.",
    "chat.error": "Message refused: {detail}", "chat.off": "The chat is closed.",
    "chat.banned": "You can no longer post in this chat.",
    "chat.offline": "Offline: send your message again once reconnected.",
    "auth.signin": "Sign in", "auth.signout": "Sign out",
    "auth.as": "Signed in: {name}", "auth.title": "Sign in",
    "auth.token": "Token (JWT)", "auth.token.help": "Paste a token issued by your shop or by `vitrine token`.",
    "auth.use": "Use this token", "auth.dev": "Development sign-in",
    "auth.dev.help": "Only available in development and test.",
    "auth.name": "Display name", "auth.role": "Role", "auth.role.viewer": "Viewer",
    "auth.role.moderator": "Moderator", "auth.role.admin": "Admin",
    "auth.close": "Close", "auth.invalid": "This token cannot be read.",
    "admin.title": "Vitrine console", "admin.lives": "Lives", "admin.settings": "Configuration",
    "admin.new": "New live", "admin.refresh": "Refresh",
    "admin.needadmin": "This console is for admins. Sign in with an admin account.",
    "admin.empty": "No lives yet.", "admin.open": "Control",
    "admin.watch": "Viewer page",
    "status.scheduled": "Scheduled", "status.live": "Live", "status.ended": "Ended",
    "new.title": "Title", "new.description": "Description", "new.date": "Scheduled date and time",
    "new.create": "Create the live", "new.created": "Live created. Set up OBS (Settings → Stream → Service: Custom):",
    "obs.server": "Server", "obs.key": "Stream key", "copy": "Copy", "copied": "Copied ✓",
    "control.start": "Start the live", "control.end": "End the live",
    "control.figures": "Live figures", "fig.current": "Viewers", "fig.peak": "Peak",
    "fig.total": "Total views", "fig.clicks": "Product clicks", "fig.carts": "Add-to-carts",
    "fig.chart": "Viewers since this page opened",
    "fig.series": "Viewers per minute", "fig.revenue": "Revenue",
    "fig.csv": "Export the figures (CSV)", "fig.csv.failed": "The export failed.",
    "control.encoder": "Encoder: {state}",
    "control.refused": "Last refused publish: key {key}, {when}, {reason}",
    "encoder.connected": "connected", "encoder.disconnected": "disconnected", "encoder.refused": "publish refused",
    "encoder.stop_failed": "not disconnected (stop it in OBS)", "encoder.failed": "failed",
    "offer.title": "Live offer", "offer.code": "Code", "offer.code.auto": "made when the live starts",
    "offer.percent": "Percent off (else the live prices)", "offer.percent.none": "live prices",
    "offer.window": "Holds after the live (hours)", "offer.until": "until {when}",
    "offer.status.pending": "Waiting for the live", "offer.status.open": "Live in the shop",
    "offer.status.closed": "Over", "offer.products": "{n} product(s)",
    "offer.synced": "in the shop", "offer.pending": "sending…", "offer.failing": "retrying…",
    "offer.withdrawn": "withdrawn", "offer.orders": "Orders from this live",
    "offer.noorders": "No orders yet.",
    "offer.via.cart": "cart", "offer.via.coupon": "live code", "offer.via.promo_code": "promo code",
    "offer.via.session": "session",
    "offer.notinshop": "Offer not created in the shop yet (retrying): {reason}",
    "offer.notwithdrawn": "Offer not withdrawn from the shop yet (retrying): {reason}",
    "control.products": "Products in this live", "control.search": "Search the catalog",
    "control.search.go": "Search", "control.add": "Add", "control.feature": "Feature",
    "control.unfeature": "Unfeature", "control.remove": "Remove",
    "control.up": "Move {name} up", "control.down": "Move {name} down",
    "control.liveprice": "Live price", "control.promo": "Promo code", "control.save": "Save",
    "control.featured": "Featured", "control.hidden": "Hidden",
    "control.noresults": "No product found.",
    "control.chat": "Chat moderation", "control.chaton": "Chat open",
    "control.slow": "Slow mode (seconds, 0 = off)", "control.apply": "Apply",
    "mod.delete": "Delete", "mod.pin": "Pin", "mod.unpin": "Unpin",
    "mod.timeout": "Time out 5 min", "mod.ban": "Ban", "mod.done": "Done.",
    "mod.confirmban": "Ban {name} from this live?",
    "admin.nocheckout": "No checkout yet: viewers fill carts they cannot pay for. Connect WooCommerce or Shopify, or give the local catalog a checkout link template (checkout_url_template, PUT /api/catalog/settings).",
    "refused.unknown key": "unknown key", "refused.rotated key": "rotated key",
    "refused.ended live": "ended live", "refused.wrong app": "wrong RTMP application",
    "refused.key of a live on another platform": "key of a live on another platform",
    "settings.platform": "Video platform", "settings.config": "Settings",
    "settings.secrets": "Secret keys (masked; leave as is to keep them)",
    "settings.key": "Name", "settings.value": "Value", "settings.addrow": "Add a row",
    "settings.save": "Save the configuration", "settings.saved": "Configuration saved.",
    "settings.unsupported": "(soon)",
    "error.generic": "Something went wrong: {detail}", "error.network": "Network unavailable.",
  },
};

const KEY = "vitrine.lang";
let lang = pick();
const listeners = new Set();

function pick() {
  const saved = localStorage.getItem(KEY);
  if (saved && saved in LABELS) return saved;
  const wanted = (navigator.languages || [navigator.language || "en"]).map((l) => l.slice(0, 2));
  return wanted.find((l) => l in LABELS) || "en";
}

export function currentLang() {
  return lang;
}

/** The label `key` in the current language, `{name}` placeholders filled from `values`. */
export function t(key, values = {}) {
  const text = LABELS[lang][key] ?? LABELS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** Fill every `data-i18n` (text), `data-i18n-label` (aria-label) and `data-i18n-placeholder`. */
export function translate(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
}

export function onLanguageChange(listener) {
  listeners.add(listener);
}

export function setLang(next) {
  lang = next in LABELS ? next : "en";
  localStorage.setItem(KEY, lang);
  translate();
  for (const listener of listeners) listener(lang);
}

/** Wire a button that switches between French and English. */
export function languageButton(button) {
  const label = () => {
    button.textContent = t("lang.switch");
    button.setAttribute("aria-label", t("lang.switch.label"));
    button.lang = lang === "fr" ? "en" : "fr";
  };
  button.addEventListener("click", () => setLang(lang === "fr" ? "en" : "fr"));
  onLanguageChange(label);
  label();
}

export function formatPrice(amount, currency) {
  if (amount === null || amount === undefined) return "";
  try {
    return new Intl.NumberFormat(lang, { style: "currency", currency }).format(Number(amount));
  } catch {
    return `${amount} ${currency}`;
  }
}

export function formatDate(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

export function formatTime(iso) {
  return new Intl.DateTimeFormat(lang, { timeStyle: "short" }).format(new Date(iso));
}
