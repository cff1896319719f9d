// static/chat/linkify.js: only http(s) URLs become links, sentence punctuation stays out of
// them, and the parts always join back to the text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSegments, safeHref } from '../../static/chat/linkify.js';

const links = (text) => linkSegments(text).filter((p) => p.href).map((p) => [p.text, p.href]);

test('http and https URLs are links; the parts join back to the text', () => {
  const cases = [
    ['see https://example.org/a?b=1. ok', [['https://example.org/a?b=1', 'https://example.org/a?b=1']]],
    ['(http://x.org/wiki/A_(b)) and more', [['http://x.org/wiki/A_(b)', 'http://x.org/wiki/A_(b)']]],
    ['HTTPS://EX.com/, then', [['HTTPS://EX.com/', 'https://ex.com/']]],
    ['two: https://a.org https://b.org!', [['https://a.org', 'https://a.org/'], ['https://b.org', 'https://b.org/']]],
    ['https://例え.jp/パス', [['https://例え.jp/パス', 'https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9']]],
  ];
  for (const [text, expected] of cases) {
    assert.deepEqual(links(text), expected, text);
    assert.equal(linkSegments(text).map((p) => p.text).join(''), text);
  }
});

test('nothing else is a link', () => {
  for (const text of ['javascript:alert(1)', 'data:text/html,<b>x</b>', 'mailto:a@b.org', 'www.example.org', 'ftp://x.org', 'http://', 'https://[broken', 'no links at all', '']) {
    assert.deepEqual(links(text), [], text);
    assert.equal(linkSegments(text).map((p) => p.text).join(''), text);
  }
  assert.deepEqual(links('https://a.org\u202egro.live'), [['https://a.org', 'https://a.org/']]); // no bidi override inside a link
  assert.equal(safeHref('javascript:alert(1)'), null);
});
