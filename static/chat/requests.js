/**
 * Message requests and blocks (PROTOCOL §6; docs/protocol.md "Message requests and
 * blocking"): the server's calls and what the app does with their answers. A direct
 * conversation started by someone this user never wrote to is a request (`request`
 * true in her conversation object) until she accepts it or replies; she may delete it
 * (on all her devices, until the starter writes again) or block the starter.
 * @module requests
 */

import { request } from './api.js';

const enc = encodeURIComponent;

export const requestsApi = {
  accept: (id) => request('POST', `/api/conversations/${enc(id)}/accept/`),
  decline: (id) => request('POST', `/api/conversations/${enc(id)}/decline/`),
  block: (username) => request('POST', `/api/users/${enc(username)}/block/`),
  unblock: (username) => request('DELETE', `/api/users/${enc(username)}/block/`),
};

/** The request fields of a conversation object from the server, for `conv`. */
export function requestFields(data) {
  return { request: data.request === true, blocked: data.blocked === true };
}

/** Take a conversation frame that says a request was deleted (on this or another of her
 * devices): it leaves the list, and the pane if it was open. True when it was one. */
export function takeDeclined(app, data) {
  if (!data?.declined) return false;
  app.conversations.map.delete(data.id);
  if (app.openId === data.id) app.close();
  app.emit('list');
  return true;
}

/** Accept the request; the answer (request false) updates the conversation at once. */
export async function acceptRequest(app, conv) {
  const { conversation } = await requestsApi.accept(conv.id);
  await app.onConversation(conversation);
}

/** Delete the request on all her devices (the server tells the others). */
export async function declineRequest(app, conv) {
  await requestsApi.decline(conv.id);
  takeDeclined(app, { id: conv.id, declined: true });
}

/** Block (or unblock) the other person of a direct conversation; the list is fetched
 * again for the conversation's new `blocked` flag. */
export async function setBlocked(app, conv, blocked) {
  const peer = app.peerOf(conv);
  if (!peer) return;
  await (blocked ? requestsApi.block(peer) : requestsApi.unblock(peer));
  conv.blocked = blocked;
  app.emit('conversation', conv.id);
  app.emit('list');
}
