/**
 * Looking people up by name (`GET /api/users/?q=`) for the sidebar's search box and the
 * user pickers: the server finds a name by its first 3 letters or more (or, on a server
 * set to exact discovery, only by the whole username), so a shorter query is not sent
 * and the box says why.
 * @module ui/people-search
 */

import { api } from '../api.js';
import { h } from './dom.js';

export const MIN_QUERY = 3;
export const SHORT_HINT = `Type ${MIN_QUERY} or more letters of a username to find people.`;
export const NONE_FOUND = 'No one found. Some servers find people only by their whole username.';

/** The people `q` finds, or null when it is too short to ask the server. */
export async function findPeople(q) {
  if (Array.from(q.trim()).length < MIN_QUERY) return null;
  const { users } = await api.searchUsers(q.trim());
  return users;
}

/** The list item that stands in for results: the hint for a short query, or "No one found". */
export function peopleNote(users) {
  return h('li.muted.people-note', {}, users === null ? SHORT_HINT : NONE_FOUND);
}
