// The time and the Sent/Read ticks on the own (purple) bubble, from static/chat/app.css
// in the light and the dark theme (issue 14, bug 16): each drawn colour, blended by the
// opacity it is drawn with, has a contrast of at least 4.5:1 against the bubble (the
// ticks are 15 px line icons beside 11.5 px text, so the text threshold applies, above
// WCAG's 3:1 for icons).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const CSS = readFileSync(new URL('../../static/chat/app.css', import.meta.url), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');

/** [{selectors: [..], decls: {prop: value}, dark}] of the plain rules (one level of @media). */
function rules(css) {
  const out = [];
  const walk = (text, dark) => {
    const re = /([^{}]+)\{((?:[^{}]|\{[^{}]*\})*)\}/g;
    for (const [, head, body] of text.matchAll(re)) {
      if (head.trim().startsWith('@media')) {
        walk(body, dark || head.includes('prefers-color-scheme: dark'));
        continue;
      }
      const decls = {};
      for (const part of body.split(';')) {
        const i = part.indexOf(':');
        if (i > 0) decls[part.slice(0, i).trim()] = part.slice(i + 1).trim();
      }
      out.push({ selectors: splitSelectors(head), decls, dark });
    }
  };
  walk(css, false);
  return out;
}

/** A selector list split at its top-level commas (not those inside :not(…) or :has(…)). */
function splitSelectors(head) {
  const parts = [''];
  let depth = 0;
  for (const ch of head) {
    if (ch === '(') depth += 1;
    if (ch === ')') depth -= 1;
    if (ch === ',' && depth === 0) parts.push('');
    else parts[parts.length - 1] += ch;
  }
  return parts.map((x) => x.trim());
}

const RULES = rules(CSS);

function vars(dark) {
  const out = {};
  for (const r of RULES) {
    if (r.selectors.includes(':root') && (!r.dark || dark)) for (const [k, v] of Object.entries(r.decls)) if (k.startsWith('--')) out[k] = v;
  }
  return out;
}

/** The value the cascade gives `prop` for an own bubble's meta line (later and more specific wins here). */
function ownValue(prop, last, fallback) {
  let value = fallback;
  for (const r of RULES) {
    if (r.dark || !(prop in r.decls)) continue;
    if (r.selectors.some((s) => s === last)) value = r.decls[prop];
  }
  for (const r of RULES) {
    if (r.dark || !(prop in r.decls)) continue;
    if (r.selectors.some((s) => s.includes('.msg.own') && s.endsWith(last.replace(/^\./, '.')) && !s.includes('.pending'))) value = r.decls[prop];
  }
  return value;
}

function rgb(value, theme) {
  const v = value.replace(/var\((--[\w-]+)\)/g, (_, name) => theme[name]);
  const m = /^#([0-9a-f]{6})$/i.exec(v.trim());
  assert.ok(m, `a colour: ${value} = ${v}`);
  return [0, 2, 4].map((i) => parseInt(m[1].slice(i, i + 2), 16));
}

function luminance(c) {
  const [r, g, b] = c.map((x) => {
    const s = x / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

const contrast = (a, b) => {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
};
const blend = (fg, bg, alpha) => fg.map((c, i) => Math.round(alpha * c + (1 - alpha) * bg[i]));

for (const dark of [false, true]) {
  test(`Sent and Read ticks are readable on the own bubble (${dark ? 'dark' : 'light'})`, () => {
    const theme = vars(dark);
    const bubble = rgb('var(--own)', theme);
    const opacity = Number(ownValue('opacity', '.meta', '1'));
    const sent = ownValue('color', '.meta', 'var(--own-text)');
    const read = ownValue('color', '.status-read', sent);
    for (const [name, colour] of [['time and Sent tick', sent], ['Read tick', read]]) {
      const drawn = blend(rgb(colour, theme), bubble, opacity);
      const ratio = contrast(drawn, bubble);
      assert.ok(ratio >= 4.5, `${name}: ${ratio.toFixed(2)}:1 (${colour} at opacity ${opacity})`);
    }
  });
}
