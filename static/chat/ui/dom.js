/**
 * Tiny DOM helpers. Text always goes in through textContent; there is no innerHTML here.
 * @module ui/dom
 */

/**
 * Make an element: h('button.primary', {type: 'button', onclick: fn, 'aria-label': 'x'}, ...children).
 * Children are nodes or strings (as text nodes); null/false are skipped.
 */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.classList.add(...classes);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'text') el.textContent = value;
    else if (key === 'value') el.value = value;
    else if (key === 'checked' || key === 'disabled' || key === 'hidden' || key === 'selected') el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** "14:05" today, "Mon 14:05" this week, else "3 Mar". */
export function shortTime(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  const now = new Date();
  const sameDay = date.toDateString() === now.toDateString();
  if (sameDay) return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (now - date < 6 * 86400000) return date.toLocaleDateString([], { weekday: 'short' }) + ' ' + date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return date.toLocaleDateString([], { day: 'numeric', month: 'short' });
}

export function fullTime(iso) {
  return iso ? new Date(iso).toLocaleString() : '';
}

/** A kid as groups of four hex digits, for reading aloud. */
export function fingerprint(kid) {
  return (kid.match(/.{1,4}/g) ?? []).join(' ');
}

/** A short-lived status toast in the live region. */
export function toast(message, kind = 'info') {
  let region = document.getElementById('toasts');
  if (!region) {
    region = h('div.toasts', { id: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(region);
  }
  const item = h(`div.toast.toast-${kind}`, {}, message);
  region.append(item);
  setTimeout(() => item.remove(), 5000);
}

/** A deterministic hue class for an avatar from a name. */
export function avatar(name, extra = '') {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  const el = h(`span.avatar.hue-${hash % 8}${extra ? `.${extra}` : ''}`, { 'aria-hidden': 'true' }, (Array.from(name)[0] ?? '?').toUpperCase());
  return el;
}
