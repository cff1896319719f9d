/**
 * Safety numbers between this user and a contact (PROTOCOL §7.4): 60 digits from both
 * users' ids and identity kids, the same on both sides, changed only when an identity
 * changes. This module says which identity of the contact the number is made from.
 * @module safety
 */

import { formatSafetyNumber, safetyNumber } from './protocol.js';

/**
 * The safety number with `username` as this device sees it, after (re)loading the
 * contact: `{user, state, number, formatted, pending, verified}` where `state` is
 * `accepted` (from the accepted identity), `changed` (an identity change is pending:
 * `pending` holds the new identity's number, or null when none is listed), or
 * `not_upgraded` (no identity: no number).
 */
export async function safetyWith({ me, myIdKid, directory, trust }, username, { force = false } = {}) {
  const entry = await directory.load(username, { force });
  const { user } = entry;
  const record = trust.record(user.id);
  const digits = async (kid) => {
    const number = await safetyNumber(me.id, myIdKid, user.id, kid);
    return { number, formatted: formatSafetyNumber(number) };
  };
  const accepted = record?.id_kid ? await digits(record.id_kid) : null;
  if (record?.pending) {
    const pending = record.pending.id_kid ? await digits(record.pending.id_kid) : null;
    return { user, state: 'changed', ...(accepted ?? { number: null, formatted: null }), pending, reason: record.pending.reason, verified: false };
  }
  if (!accepted) return { user, state: 'not_upgraded', number: null, formatted: null, pending: null, verified: false };
  return { user, state: 'accepted', ...accepted, pending: null, verified: trust.isVerified(user.id) };
}
