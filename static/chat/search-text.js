/**
 * Words for local search, with no DOM and no storage (node-tested): how a text becomes
 * tokens, how a query matches them, and the snippet of a match.
 *
 * A word is a run of letters, digits and combining marks in the text as written; its
 * tokens are the word normalized: NFKC, lower-cased (with ß → ss and final ς → σ),
 * diacritics stripped (NFD without combining marks), split again where normalizing
 * made a separator (½ → 1⁄2). Han and kana characters, written without spaces, are one
 * token each. A query matches a message holding every query token, the last one as a
 * prefix while it is still being typed (the query does not end in a space).
 * @module search-text
 */

const WORD = /[\p{L}\p{N}\p{M}]+/gu;
const MARKS = /\p{M}+/gu;
const SPACELESS = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;
const SPACELESS_ALL = /([\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}])/u;

/** Tokens longer than this are cut (a pasted key or URL is not a word anyone searches for whole). */
export const MAX_TOKEN = 40;

/** One word's normalized form: NFKC, case-folded, without diacritics. */
export function normalize(word) {
  return word
    .normalize('NFKC')
    .toLowerCase()
    .replace(/ß/g, 'ss')
    .replace(/ς/g, 'σ')
    .normalize('NFD')
    .replace(MARKS, '')
    .normalize('NFC');
}

const ASCII_WORD = /^[A-Za-z0-9]+$/;
const ASCII_TEXT = /^[\x00-\x7f]*$/;

function tokensOfWord(word) {
  if (ASCII_WORD.test(word)) return [(word.length > MAX_TOKEN ? word.slice(0, MAX_TOKEN) : word).toLowerCase()];
  const out = [];
  for (const [part] of normalize(word).matchAll(WORD)) {
    if (SPACELESS.test(part)) {
      for (const piece of part.split(SPACELESS_ALL)) if (piece) out.push(piece.slice(0, MAX_TOKEN));
    } else {
      out.push(part.slice(0, MAX_TOKEN));
    }
  }
  return out;
}

/**
 * The words of `text` as written, each with its tokens: `[{start, end, tokens}]`
 * (`start`/`end` index `text`).
 */
export function words(text) {
  const out = [];
  for (const match of String(text ?? '').matchAll(WORD)) {
    const tokens = tokensOfWord(match[0]);
    if (tokens.length) out.push({ start: match.index, end: match.index + match[0].length, tokens });
  }
  return out;
}

/** The distinct tokens of `text`. @returns {string[]} */
export function tokenize(text) {
  const source = String(text ?? '');
  if (ASCII_TEXT.test(source)) {
    // the same words and tokens as below, found faster (no Unicode classes needed)
    return [...new Set((source.toLowerCase().match(/[a-z0-9]+/g) ?? []).map((t) => (t.length > MAX_TOKEN ? t.slice(0, MAX_TOKEN) : t)))];
  }
  const seen = new Set();
  for (const word of words(text)) for (const token of word.tokens) seen.add(token);
  return [...seen];
}

/**
 * A query's terms: `{terms, prefix}`; every term must match a token exactly, except the
 * last, which matches as a prefix when `prefix` (the query does not end in a space or
 * punctuation, so it is still being typed). Repeated terms count once.
 */
export function parseQuery(query) {
  const q = String(query ?? '');
  const all = [];
  for (const word of words(q)) all.push(...word.tokens);
  const prefix = all.length > 0 && /[\p{L}\p{N}\p{M}]$/u.test(q);
  const last = prefix ? all[all.length - 1] : null;
  const exact = [...new Set(prefix ? all.slice(0, -1) : all)].filter((t) => t !== last);
  const terms = last === null ? exact : [...exact, last];
  return { terms, prefix: prefix && terms.length > 0 };
}

/** Whether one token matches the parsed query (any term; the last as a prefix when it is one). */
export function tokenMatches(token, { terms, prefix }) {
  const lastIndex = terms.length - 1;
  for (let i = 0; i < terms.length; i += 1) {
    if (token === terms[i] || (prefix && i === lastIndex && token.startsWith(terms[i]))) return true;
  }
  return false;
}

/**
 * A snippet of `text` around its first match: `[{text, hit}]` parts in order (the hits
 * are the matching words as written), with "…" where it was cut. At most about
 * `width` characters.
 * @returns {Array<{text: string, hit: boolean}>}
 */
export function snippet(text, parsed, { width = 120, before = 30 } = {}) {
  const source = String(text ?? '');
  const hits = words(source).filter((w) => w.tokens.some((t) => tokenMatches(t, parsed)));
  let from = 0;
  if (hits.length && hits[0].start > before) {
    from = hits[0].start - before;
    const space = source.lastIndexOf(' ', hits[0].start - 1);
    if (space >= from - 10 && space < hits[0].start) from = space + 1;
  }
  let to = Math.min(source.length, from + width);
  for (const hit of hits) if (hit.start < to && hit.end > to) to = hit.end;
  const parts = [];
  const push = (s, hit = false) => {
    if (s) parts.push({ text: s.replace(/\s+/g, ' '), hit });
  };
  if (from > 0) push('…');
  let at = from;
  for (const hit of hits) {
    if (hit.start < from) continue;
    if (hit.start >= to) break;
    push(source.slice(at, hit.start));
    push(source.slice(hit.start, hit.end), true);
    at = hit.end;
  }
  push(source.slice(at, to));
  if (to < source.length) push('…');
  return parts;
}
