// The wording of group and device changes in the browser app (issue 14, bugs 3 and 5):
// each sentence says what happened from this person's point of view, and nothing false
// (a removal is not "also encrypted for", one's own device is not "the person's").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventText } from '../../static/chat/ui/timeline-view.js';
import { deviceChangeText } from '../../static/chat/device-notices.js';

const names = { 1: 'alice', 2: 'bob', 3: 'carol' };
const as = (id) => ({ me: { id, username: names[id] }, nameOf: (uid) => names[uid] });

test('roster events read right for the one removed, the one who left and the others', () => {
  const remove = { op: 'remove', by: 1, subjects: [3] };
  assert.equal(eventText(remove, as(3)), 'alice removed you');
  assert.equal(eventText(remove, as(1)), 'You removed carol');
  assert.equal(eventText(remove, as(2)), 'alice removed carol');
  const leave = { op: 'leave', by: 2, subjects: [2] };
  assert.equal(eventText(leave, as(2)), 'You left');
  assert.equal(eventText(leave, as(1)), 'bob left');
  const add = { op: 'add', by: 1, subjects: [2, 3] };
  assert.equal(eventText(add, as(3)), 'alice added bob and you');
  assert.equal(eventText(add, as(1)), 'You added bob and carol');
  const title = { op: 'title', by: 2, subjects: [], title: 'Book club' };
  assert.equal(eventText(title, as(1)), 'bob changed the title to “Book club”');
  assert.equal(eventText(title, as(2)), 'You changed the title to “Book club”');
  const create = { op: 'create', by: 1, subjects: [1, 2], title: 'Trip' };
  assert.equal(eventText(create, as(2)), 'alice created the group “Trip” with you');
});

const mine = { own: true, username: 'alice', name: 'Work laptop', certified: true };
const bobs = { own: false, username: 'bob', name: 'Bob tablet', certified: true };

test('an added device: own or a contact’s, certified (linked), or not upgraded', () => {
  assert.equal(deviceChangeText({ added: [mine] }),
    'Your new device “Work laptop” was added and certified by your identity; this message is encrypted for it too.');
  assert.equal(deviceChangeText({ added: [bobs] }),
    'bob’s new device “Bob tablet” was added and certified by bob’s identity; this message is encrypted for it too.');
  assert.equal(deviceChangeText({ added: [{ ...bobs, certified: null }] }),
    'bob’s new device “Bob tablet” was added (bob has not upgraded, so it has no identity certificate); this message is encrypted for it too.');
  assert.equal(deviceChangeText({ added: [{ ...bobs, revoked: true }] }),
    'bob’s new device “Bob tablet” was added and is already revoked; nothing is encrypted for it.');
  assert.equal(deviceChangeText({ added: [{ ...bobs, certified: false }] }),
    'bob’s new device “Bob tablet” is not certified by bob’s identity; nothing is encrypted for it.');
  for (const d of [mine, bobs]) {
    const text = deviceChangeText({ added: [d] });
    assert.doesNotMatch(text, /check with the person|removed/);
  }
  assert.doesNotMatch(deviceChangeText({ added: [mine] }), /bob|person/);
});

test('a removed device is never said to be encrypted for', () => {
  assert.equal(deviceChangeText({ removed: [mine] }),
    'Your device “Work laptop” was removed; this message is no longer encrypted for it.');
  assert.equal(deviceChangeText({ removed: [bobs] }),
    'bob’s device “Bob tablet” was removed; this message is no longer encrypted for it.');
  assert.equal(deviceChangeText({ removed: [null] }), 'A device was removed; this message is no longer encrypted for it.');
  for (const text of [deviceChangeText({ removed: [mine] }), deviceChangeText({ removed: [bobs] })]) {
    assert.doesNotMatch(text, /also encrypted|encrypted for it too|new device/);
  }
});

test('added and removed together, in that order; nothing known says only what is true', () => {
  assert.equal(deviceChangeText({ added: [bobs], removed: [mine] }),
    `${deviceChangeText({ added: [bobs] })} ${deviceChangeText({ removed: [mine] })}`);
  assert.equal(deviceChangeText({}), 'The device list changed; this message was encrypted again for the current devices.');
});

test('the directory says whose each changed device is and whether it is certified', async () => {
  const { Directory } = await import('../../static/chat/directory.js');
  const trust = { addEventListener() {}, record: (id) => ({ 1: { id_kid: 'ID-A' }, 2: { id_kid: 'ID-B' }, 3: { id_kid: null } })[id] };
  const directory = new Directory({ me: { id: 1, username: 'alice' }, trust });
  const device = (kid, name, certBy, extra = {}) => ({ enc_kid: kid, name, certBy, valid: true, revoked: null, ...extra });
  directory.latest.set('alice', { user: { id: 1, username: 'alice' }, devices: [device('a1', 'Work laptop', 'ID-A'), device('a2', 'Old phone', 'ID-A', { revoked: '2026-01-01T00:00:00Z' })] });
  directory.latest.set('bob', { user: { id: 2, username: 'bob' }, devices: [device('b1', 'Bob tablet', 'ID-B'), device('b2', 'Server phone', null)] });
  directory.latest.set('carol', { user: { id: 3, username: 'carol' }, devices: [device('c1', 'Carol pc', null)] });
  assert.deepEqual(directory.devicesByKid(['a1', 'a2', 'b1', 'b2', 'c1', 'zz']), [
    { own: true, username: 'alice', name: 'Work laptop', certified: true, revoked: false },
    { own: true, username: 'alice', name: 'Old phone', certified: false, revoked: true },
    { own: false, username: 'bob', name: 'Bob tablet', certified: true, revoked: false },
    { own: false, username: 'bob', name: 'Server phone', certified: false, revoked: false },
    { own: false, username: 'carol', name: 'Carol pc', certified: null, revoked: false },
    null,
  ]);
});
