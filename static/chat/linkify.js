/**
 * Finding links in message text (pure, no DOM; node-tested): `http://` and `https://`
 * URLs only, nothing else (no bare domains, no `javascript:`, `data:` or `mailto:`), so
 * that a message can never make a link that runs code or leaves the web. The view turns
 * each link into an <a> made with DOM calls (rel="noopener noreferrer", target="_blank");
 * no preview is ever fetched (a preview would tell the link's server who reads it).
 * @module linkify
 */

const URL_RE = /\bhttps?:\/\/[^\s<>"'`\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+/giu;
/** Punctuation that ends a sentence rather than the URL ("see https://x.org."). */
const TRAILING = /[.,;:!?'"’”»)\]}]+$/u;
const PAIRS = { ')': '(', ']': '[', '}': '{' };

/** `url` without the sentence punctuation at its end (a closing bracket stays when the URL opened it). */
function trimUrl(url) {
  let out = url;
  for (;;) {
    const match = out.match(TRAILING);
    if (!match) return out;
    const last = out.at(-1);
    const open = PAIRS[last];
    if (open && count(out, open) >= count(out, last)) return out;
    out = out.slice(0, -1);
  }
}

function count(text, ch) {
  return text.split(ch).length - 1;
}

/** The URL as an http(s) href the browser parses, or null. */
export function safeHref(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
  } catch {
    return null;
  }
}

/**
 * `text` cut into parts: `{text}` for plain text and `{text, href}` for a link (`text`
 * as written, `href` as the browser parses it). Joined, the parts' `text` is `text`.
 * @returns {Array<{text: string, href?: string}>}
 */
export function linkSegments(text) {
  const parts = [];
  let at = 0;
  for (const match of String(text).matchAll(URL_RE)) {
    const url = trimUrl(match[0]);
    const href = safeHref(url);
    if (!href) continue;
    if (match.index > at) parts.push({ text: text.slice(at, match.index) });
    parts.push({ text: url, href });
    at = match.index + url.length;
  }
  if (at < text.length || !parts.length) parts.push({ text: text.slice(at) });
  return parts;
}
