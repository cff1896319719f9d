/**
 * The words shown when the server refused a message because a member's devices changed
 * (`stale_devices`, PROTOCOL §5) and this device sealed it again for the new list
 * (issue 14, bug 5). Pure: the caller says which devices were added and removed and
 * what it knows of each, and every sentence stays true to that:
 *
 * * added vs removed: an added device now gets the message, a removed one no longer does;
 * * own vs a contact's: "your device" vs "bob’s device" (never "check with the person"
 *   for one's own);
 * * certified by the owner's identity (linked, or added by a device holding it), not
 *   upgraded (no identity: checked by its own key proof only), or not certified (nothing
 *   is encrypted for it: sending is paused by the trust notice instead).
 * @module device-notices
 */

/**
 * @typedef {object} DeviceFacts
 * @property {boolean} own the device is on this user's own account
 * @property {string} username its owner
 * @property {string} [name] the device's name
 * @property {true|false|null} certified true: certified by the owner's accepted identity;
 *   null: the owner has no identity (not upgraded); false: not certified
 * @property {boolean} [revoked] revoked by now
 */

const quoted = (d) => (d.name ? `“${d.name}”` : 'a device');
const owner = (d) => (d.own ? 'your' : `${d.username}’s`);

/** One device's sentence; `d` null: a device no list shows any more. */
function addedSentence(d) {
  if (!d) return 'A device was added.';
  const whose = d.own ? 'Your new device' : `${d.username}’s new device`;
  if (d.revoked) return `${whose} ${quoted(d)} was added and is already revoked; nothing is encrypted for it.`;
  if (d.certified === true) {
    return `${whose} ${quoted(d)} was added and certified by ${owner(d)} identity; this message is encrypted for it too.`;
  }
  if (d.certified === null) {
    return `${whose} ${quoted(d)} was added (${d.username} has not upgraded, so it has no identity certificate); this message is encrypted for it too.`;
  }
  return `${whose} ${quoted(d)} is not certified by ${owner(d)} identity; nothing is encrypted for it.`;
}

function removedSentence(d) {
  if (!d) return 'A device was removed; this message is no longer encrypted for it.';
  return `${d.own ? 'Your' : `${d.username}’s`} device ${quoted(d)} was removed; this message is no longer encrypted for it.`;
}

/**
 * The notice on a message sealed again after `stale_devices`.
 * @param {{added?: Array<DeviceFacts|null>, removed?: Array<DeviceFacts|null>}} change
 * @returns {string}
 */
export function deviceChangeText({ added = [], removed = [] } = {}) {
  const parts = [...added.map(addedSentence), ...removed.map(removedSentence)];
  if (!parts.length) return 'The device list changed; this message was encrypted again for the current devices.';
  return parts.join(' ');
}
