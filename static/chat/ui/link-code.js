/**
 * A link code (PROTOCOL §7.2) shown large: five groups of four, read out group by group.
 * @module ui/link-code
 */

import { formatLinkCode } from '../protocol.js';
import { h } from './dom.js';

/** The code as a labelled group; `data-code` holds the 20 characters (for comparing). */
export function linkCodeView(code, { id } = {}) {
  const groups = formatLinkCode(code).split(' ');
  const parts = [];
  groups.forEach((group, i) => {
    if (i) parts.push(' ');
    parts.push(h('span.code-group', {}, group));
  });
  return h('div.link-code', { id, role: 'group', 'aria-label': 'Link code', dataset: { code } }, parts);
}
