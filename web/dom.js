// The pages' two DOM helpers. User text reaches the page only as text nodes and attribute
// values (el() never parses HTML).

export const $ = (id) => document.getElementById(id);

/// Creates an element. Strings among `children` become text nodes; `text` sets textContent;
/// `on` is {event: handler}; other props are attributes (true → empty, false/null → absent).
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

/// The `/live/{room}` URL of this origin: `?user=` on an open server, `?since=` to resume.
export function liveUrl(room, { user = '', since = null } = {}) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const q = new URLSearchParams();
  if (user) q.set('user', user);
  if (since != null) q.set('since', String(since));
  const qs = q.toString();
  return `${scheme}//${location.host}/live/${encodeURIComponent(room)}${qs ? `?${qs}` : ''}`;
}
