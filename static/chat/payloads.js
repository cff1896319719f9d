/**
 * The payload types of PROTOCOL.md §10.1 beyond the plain text: replies (`reply_to`),
 * reactions, edits and deletes; their validation; and `applyPayloads`, the pure reducer
 * that folds a conversation's opened messages into what to show.
 *
 * Pure functions over plain JSON values; no DOM, no crypto. The twin of
 * `chatclient/payloads.py` (same names in camelCase), proven equal by the shared vectors
 * `tests/vectors/payloads.json`. The text payload itself is protocol.js's `textMessage`
 * and the file payload attachments.js's `validateFilePayload`; this module builds on them.
 * Rules: docs/protocol.md, "Rich messages".
 * @module payloads
 */

import { FileRefused, validateFilePayload } from './attachments.js';
import { isClientMsgId, MAX_TEXT_CHARS, ProtocolError, textMessage } from './protocol.js';

export const MAX_EMOJI_BYTES = 32;
export const MAX_SENDER_ID = Number.MAX_SAFE_INTEGER;
export const CONTENT_TYPES = ['text', 'file'];
export const RELATION_TYPES = ['reaction', 'edit', 'delete'];

// --- one emoji (isReactionEmoji): the grammar and table of payloads.py ------------------

/** The code point ranges counted as emoji (payloads.py's EMOJI_RANGES). */
export const EMOJI_RANGES = [
  [0x00a9, 0x00a9], [0x00ae, 0x00ae], [0x203c, 0x203c], [0x2049, 0x2049], [0x2122, 0x2122],
  [0x2139, 0x2139], [0x2194, 0x2199], [0x21a9, 0x21aa], [0x231a, 0x231b], [0x2328, 0x2328],
  [0x23cf, 0x23cf], [0x23e9, 0x23f3], [0x23f8, 0x23fa], [0x24c2, 0x24c2], [0x25aa, 0x25ab],
  [0x25b6, 0x25b6], [0x25c0, 0x25c0], [0x25fb, 0x25fe], [0x2600, 0x27bf], [0x2934, 0x2935],
  [0x2b05, 0x2b07], [0x2b1b, 0x2b1c], [0x2b50, 0x2b50], [0x2b55, 0x2b55], [0x3030, 0x3030],
  [0x303d, 0x303d], [0x3297, 0x3297], [0x3299, 0x3299], [0x1f000, 0x1faff],
];
const ZWJ = 0x200d;
const VS16 = 0xfe0f;
const KEYCAP = 0x20e3;
const BLACK_FLAG = 0x1f3f4;
const CANCEL_TAG = 0xe007f;
const KEYCAP_BASES = '0123456789#*';

const isRegional = (cp) => cp >= 0x1f1e6 && cp <= 0x1f1ff;
const isTone = (cp) => cp >= 0x1f3fb && cp <= 0x1f3ff;
const isTag = (cp) => cp >= 0xe0020 && cp <= 0xe007e;
const isBase = (cp) => !isRegional(cp) && !isTone(cp) && EMOJI_RANGES.some(([low, high]) => cp >= low && cp <= high);

function isEmojiSequence(cps) {
  if (cps.length === 2 && isRegional(cps[0]) && isRegional(cps[1])) return true;
  if (cps.length && cps[cps.length - 1] === KEYCAP) {
    const body = cps.slice(0, -1);
    return (body.length === 1 || body.length === 2) && KEYCAP_BASES.includes(String.fromCodePoint(body[0]))
      && (body.length === 1 || body[1] === VS16);
  }
  if (cps.length >= 3 && cps[0] === BLACK_FLAG && cps[cps.length - 1] === CANCEL_TAG) {
    return cps.slice(1, -1).every(isTag);
  }
  let i = 0;
  for (;;) {
    if (i >= cps.length || !isBase(cps[i])) return false;
    i += 1;
    if (i < cps.length && cps[i] === VS16) i += 1;
    if (i < cps.length && isTone(cps[i])) i += 1;
    if (i === cps.length) return true;
    if (cps[i] !== ZWJ) return false;
    i += 1;
  }
}

/**
 * Whether `s` is one emoji fit for a reaction: a string of at most 32 bytes of UTF-8
 * that is one flag, keycap, tag flag, or ZWJ sequence of emoji (each with an optional
 * VS16 and skin tone). Text, digits, spaces, two emoji, and a lone skin tone or regional
 * indicator are not.
 */
export function isReactionEmoji(s) {
  if (typeof s !== 'string' || !s || !s.isWellFormed()) return false;
  if (new TextEncoder().encode(s).length > MAX_EMOJI_BYTES) return false;
  return isEmojiSequence(Array.from(s, (ch) => ch.codePointAt(0)));
}

// --- references and builders ------------------------------------------------------------

const bad = (detail) => new ProtocolError('bad_request', detail);
const isPlainObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

function checkRef(ref, name) {
  const keys = isPlainObject(ref) ? Object.keys(ref).sort() : [];
  if (keys.length !== 2 || keys[0] !== 'client_msg_id' || keys[1] !== 'sender_id'
    || !Number.isSafeInteger(ref.sender_id) || ref.sender_id < 1 || !isClientMsgId(ref.client_msg_id)) {
    throw bad(`${name} must be exactly {sender_id, client_msg_id}`);
  }
  return ref;
}

/**
 * The reference `{sender_id, client_msg_id}` to a message, for `reply_to` and `to`;
 * `bad_request` unless the id is a positive integer and the client_msg_id a lowercase
 * canonical UUID.
 */
export function messageRef(senderId, clientMsgId) {
  return checkRef({ sender_id: senderId, client_msg_id: clientMsgId }, 'a reference');
}

function checkText(text, what = 'text') {
  if (typeof text !== 'string') throw bad(`${what} must be a string`);
  const length = Array.from(text).length;
  if (length > MAX_TEXT_CHARS) throw new ProtocolError('too_large', `the ${what} is longer than ${MAX_TEXT_CHARS} characters (${length})`);
  return text;
}

/** `{type: "text", text}` (protocol.js's textMessage), with `reply_to` when given; over 16,000 code points is `too_large`. */
export function textPayload(text, replyTo = null) {
  const payload = textMessage(text);
  if (replyTo !== null && replyTo !== undefined) payload.reply_to = checkRef(replyTo, 'reply_to');
  return payload;
}

/** `{type: "reaction", to, emoji}`, with `remove: true` to take it back; `bad_request` for an emoji isReactionEmoji refuses. */
export function reactionPayload(to, emoji, remove = false) {
  if (!isReactionEmoji(emoji)) throw bad('emoji must be one emoji of at most 32 bytes');
  if (typeof remove !== 'boolean') throw bad('remove must be true or false');
  const payload = { type: 'reaction', to: checkRef(to, 'to'), emoji };
  if (remove) payload.remove = true;
  return payload;
}

/** `{type: "edit", to, text}`: the new text of the sender's own message. */
export function editPayload(to, text) {
  return { type: 'edit', to: checkRef(to, 'to'), text: checkText(text) };
}

/** `{type: "delete", to}`: the sender takes her message back (then `DELETE …/messages/<id>/`). */
export function deletePayload(to) {
  return { type: 'delete', to: checkRef(to, 'to') };
}

// --- validation -------------------------------------------------------------------------

/**
 * Check a decrypted payload of any §10.1 type and return it unchanged. Throws
 * ProtocolError: `unknown_type` for a type this module does not know, `too_large` for a
 * text over 16,000 code points, `bad_request` for anything else malformed (a `file`
 * payload as validateFilePayload judges it). Unknown fields are ignored.
 */
export function validatePayload(obj) {
  if (!isPlainObject(obj) || typeof obj.type !== 'string') throw bad('a payload must be a JSON object with a string type');
  const kind = obj.type;
  if (kind === 'text') {
    checkText(obj.text);
  } else if (kind === 'file') {
    try {
      validateFilePayload(obj);
    } catch (error) {
      if (error instanceof FileRefused) throw bad(`file: ${error.detail}`);
      throw error;
    }
  } else if (kind === 'reaction') {
    if (!isReactionEmoji(obj.emoji)) throw bad('emoji must be one emoji of at most 32 bytes');
    if (Object.hasOwn(obj, 'remove') && typeof obj.remove !== 'boolean') throw bad('remove must be true or false');
  } else if (kind === 'edit') {
    checkText(obj.text);
  } else if (kind !== 'delete') {
    throw new ProtocolError('unknown_type', `unknown payload type ${JSON.stringify(Array.from(kind).slice(0, 40).join(''))}`);
  }
  if (CONTENT_TYPES.includes(kind)) {
    if (Object.hasOwn(obj, 'reply_to')) checkRef(obj.reply_to, 'reply_to');
  } else {
    checkRef(obj.to, 'to');
  }
  return obj;
}

function valid(obj) {
  try {
    validatePayload(obj);
    return true;
  } catch (error) {
    if (error instanceof ProtocolError) return false;
    throw error;
  }
}

// --- the reducer ------------------------------------------------------------------------

/**
 * @typedef {object} Shown
 * @property {number} seq
 * @property {number} sender_id
 * @property {string} client_msg_id
 * @property {'text'|'file'|null} type null when deleted, not opened, or malformed
 * @property {object|null} payload the message's own text/file payload
 * @property {{sender_id: number, client_msg_id: string}|null} reply_to
 * @property {string|null} edited the latest edit's text
 * @property {boolean} deleted
 * @property {Object<string, number[]>} reactions emoji -> user ids
 */

/**
 * Fold a conversation's opened messages, ordered by `seq`, into what to show (the twin of
 * payloads.py's apply_payloads, which documents it in full). Each message is
 * `{seq, sender_id, client_msg_id, payload, deleted?}`: `payload` null for one that did
 * not open or was flagged, `deleted` true for an envelope the server nulled. Returns one
 * Shown per message to show, in order; reactions, edits, deletes and unknown types are
 * not shown but applied to the earlier text/file message `to` names (edits and deletes
 * only from its sender; reactions latest per (user, emoji)); malformed ones, unknown
 * targets and targets already deleted are ignored.
 * @returns {Shown[]}
 */
export function applyPayloads(messages) {
  const shown = [];
  const targets = new Map();
  const key = (senderId, clientMsgId) => `${senderId}|${clientMsgId}`;
  for (const message of messages) {
    const payload = message.payload ?? null;
    const entry = {
      seq: message.seq,
      sender_id: message.sender_id,
      client_msg_id: message.client_msg_id,
      type: null,
      payload: null,
      reply_to: null,
      edited: null,
      deleted: message.deleted === true,
      reactions: {},
    };
    if (entry.deleted || payload === null) {
      shown.push(entry);
      continue;
    }
    const kind = isPlainObject(payload) ? payload.type : null;
    if (CONTENT_TYPES.includes(kind)) {
      if (valid(payload)) {
        Object.assign(entry, { type: kind, payload, reply_to: payload.reply_to ?? null });
        const k = key(entry.sender_id, entry.client_msg_id);
        if (!targets.has(k)) targets.set(k, entry);
      }
      shown.push(entry);
      continue;
    }
    if (!RELATION_TYPES.includes(kind) || !valid(payload)) continue;
    const target = targets.get(key(payload.to.sender_id, payload.to.client_msg_id));
    if (!target || target.deleted) continue;
    if (kind === 'reaction') react(target.reactions, message.sender_id, payload);
    else if (target.sender_id !== message.sender_id) continue;
    else if (kind === 'edit') target.edited = payload.text;
    else Object.assign(target, { deleted: true, type: null, payload: null, reply_to: null, edited: null, reactions: {} });
  }
  return shown;
}

function react(reactions, userId, payload) {
  const { emoji } = payload;
  const users = Object.hasOwn(reactions, emoji) ? reactions[emoji] : [];
  const at = users.indexOf(userId);
  if (at >= 0) users.splice(at, 1);
  if (!payload.remove) users.push(userId);
  if (users.length) reactions[emoji] = users;
  else delete reactions[emoji];
}
