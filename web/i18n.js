// Interface strings in English and Simplified Chinese, and locale-aware formatting.
//
// Each page module registers its own dictionaries (`register({en: {...}, zh: {...}})`) and
// looks strings up with `t('key', {name: 'ann'})`; `{name}` in a string is replaced by the
// variable. The language comes from `?lang=`, then the saved choice (localStorage), then the
// browser's languages; `setLang()` switches and saves it. A key missing in Chinese falls back to
// English, a key missing everywhere shows itself (and tests look for that).
//
// Dates and numbers are formatted with Intl in the page's language (`zh-CN` or `en`), so a
// Chinese team's board reads 2026年7月1日 and an English one 1 Jul 2026.

export const LANGS = ['en', 'zh'];
const STORAGE_KEY = 'okrhub.lang';
const dictionaries = { en: {}, zh: {} };
const listeners = new Set();

/// 'zh' for any Chinese browser language, else 'en'.
export function pickLang(candidates) {
  for (const c of candidates) {
    const l = String(c ?? '').toLowerCase();
    if (l.startsWith('zh')) return 'zh';
    if (l.startsWith('en')) return 'en';
  }
  return 'en';
}

function initialLang() {
  const fromUrl = new URLSearchParams(globalThis.location?.search ?? '').get('lang');
  if (LANGS.includes(fromUrl)) return fromUrl;
  let saved = null;
  try {
    saved = globalThis.localStorage?.getItem(STORAGE_KEY);
  } catch {
    saved = null;
  }
  if (LANGS.includes(saved)) return saved;
  return pickLang(globalThis.navigator?.languages ?? [globalThis.navigator?.language]);
}

let lang = initialLang();

export function getLang() {
  return lang;
}

/// The BCP 47 tag for Intl and `<html lang>`.
export function locale(l = lang) {
  return l === 'zh' ? 'zh-CN' : 'en';
}

export function setLang(next) {
  if (!LANGS.includes(next) || next === lang) return;
  lang = next;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, next);
  } catch {
    // private mode: the choice lasts for this page only
  }
  applyDocumentLang();
  for (const f of listeners) f(lang);
}

/// Calls `f(lang)` after every switch (pages re-render).
export function onLangChange(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

export function register(dicts) {
  for (const l of LANGS) Object.assign(dictionaries[l], dicts[l] ?? {});
}

export function has(key, l = lang) {
  return key in dictionaries[l];
}

export function t(key, vars = {}) {
  const s = dictionaries[lang][key] ?? dictionaries.en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/// Every key registered in English that Chinese lacks (tests keep this empty).
export function missing() {
  return Object.keys(dictionaries.en).filter((k) => !(k in dictionaries.zh));
}

export function fmtNumber(n, opts = { maximumFractionDigits: 2 }) {
  if (n == null || Number.isNaN(n)) return '–';
  return new Intl.NumberFormat(locale(), opts).format(n);
}

/// `YYYY-MM-DD` (a cycle's day, UTC) or epoch ms, as a date in the page's language.
export function fmtDate(value, opts = { year: 'numeric', month: 'short', day: 'numeric' }) {
  if (value == null) return '';
  const d = typeof value === 'string' ? new Date(`${value}T00:00:00Z`) : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const o = typeof value === 'string' ? { ...opts, timeZone: 'UTC' } : opts;
  return new Intl.DateTimeFormat(locale(), o).format(d);
}

export function fmtTime(ms) {
  return new Intl.DateTimeFormat(locale(), { hour: '2-digit', minute: '2-digit' }).format(new Date(ms));
}

/// "3 minutes ago" / "3分钟前"; `now` is injectable for tests.
export function fmtRelative(ms, now = Date.now()) {
  const s = Math.round((ms - now) / 1000);
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto' });
  const abs = Math.abs(s);
  if (abs < 45) return rtf.format(0, 'second');
  if (abs < 3600) return rtf.format(Math.round(s / 60), 'minute');
  if (abs < 86_400) return rtf.format(Math.round(s / 3600), 'hour');
  if (abs < 7 * 86_400) return rtf.format(Math.round(s / 86_400), 'day');
  return fmtDate(ms);
}

/// Sets `<html lang>` and the text of every `[data-i18n]` element (static markup).
export function applyDocumentLang() {
  if (!globalThis.document) return;
  document.documentElement.lang = locale();
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll('[data-i18n-placeholder]')) {
    e.placeholder = t(e.dataset.i18nPlaceholder);
  }
  for (const e of document.querySelectorAll('[data-i18n-label]')) {
    e.setAttribute('aria-label', t(e.dataset.i18nLabel));
  }
}

/// A `<select>` or buttons switching the language: pages put `<select id="lang">` in the header.
export function bindLangSwitch(select) {
  if (!select) return;
  select.replaceChildren(...LANGS.map((l) => {
    const o = document.createElement('option');
    o.value = l;
    o.textContent = l === 'zh' ? '中文' : 'English';
    return o;
  }));
  select.value = lang;
  select.addEventListener('change', () => setLang(select.value));
  onLangChange((l) => {
    select.value = l;
  });
}
