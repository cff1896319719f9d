// static/chat/roster.js: record strings and hashes, shapes, the rules of §8, verification in
// the server's order, incremental verification, persisted states, and the Python-made
// roster vector (its chain verified, every single-field tamper refused with its error).
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as P from '../../static/chat/protocol.js';
import * as R from '../../static/chat/roster.js';
import { fixedKeys, outcome, rosterSigningKey, vector } from './helpers.mjs';

const GID = '9b2c4e6f-1a3d-4c5b-8e7f-0a1b2c3d4e5f';
let keys;

before(async () => {
  keys = await fixedKeys();
});

/** signingKey accepting exactly the fixed devices named, for any `by`. */
const keysOf = (...names) => (record) => {
  const device = names.map((n) => keys[n]).find((k) => k.sigKid === record.sig_kid);
  return device ? device.sigPublic : null;
};

const make = (n, prev, op, subjects, by, title = null, device = 'alice', gid = GID) =>
  R.makeRecord(keys[device], { gid, n, prev, op, subjects, by, title });

/** Records made from [op, subjects, by, title, device] steps, each after the last. */
async function chain(...steps) {
  const records = [];
  let prev = R.GENESIS;
  for (const [n, [op, subjects, by, title, device]] of steps.entries()) {
    records.push(await make(n, prev, op, subjects, by, title, device));
    prev = records[records.length - 1].hash;
  }
  return records;
}

const codeOf = (records, { signingKey = keysOf('alice', 'bob'), gid = GID, state = null } = {}) =>
  outcome(R.verifyChain(gid, records, signingKey, { state }));

describe('strings, hashes, records', () => {
  test('roster string and hash', async () => {
    const titleHash = await P.sha256Hex('Ω');
    const text = await R.rosterString(GID, 3, 'ab'.repeat(32), 'add', [2, 10], 1, 'Ω');
    assert.equal(text, `e2ee-chat/v2/roster|${GID}|3|${'ab'.repeat(32)}|add|2,10|1|${titleHash}`);
    assert.equal(await R.titleHash(null), await P.sha256Hex(''));
    const record = await make(0, R.GENESIS, 'create', [3, 1, 2, 1], 1, 'Ω');
    assert.deepEqual(record.subjects, [1, 2, 3]);
    const expected = await R.rosterString(GID, 0, R.GENESIS, 'create', [1, 2, 3], 1, 'Ω');
    assert.equal(record.hash, await P.sha256Hex(`${expected}|${record.sig}`));
    assert.equal(record.hash, await R.recordHash(GID, record));
    assert.deepEqual(Object.keys(record).sort(), [...R.SIGNED_FIELDS].sort());
    assert.equal(await R.verifyRecordSignature(GID, record, keys.alice.sigPublic), true);
    assert.equal(await R.verifyRecordSignature(GID, record, keys.bob.sigPublic), false);
    assert.equal(await R.verifyRecordSignature(GID.replace('9b', '9c'), record, keys.alice.sigPublic), false);
  });

  test('subjects sort numerically', async () => {
    assert.deepEqual((await make(0, R.GENESIS, 'create', [10, 9, 100, 1], 1)).subjects, [1, 9, 10, 100]);
  });

  test('makeRecord refuses a bad gid or shape', async () => {
    for (const gid of [GID.toUpperCase(), '9b2c4e6f-1a3d-1c5b-8e7f-0a1b2c3d4e5f', 'x']) {
      await assert.rejects(make(0, R.GENESIS, 'create', [1], 1, null, 'alice', gid), R.RosterError);
    }
    await assert.rejects(make(0, R.GENESIS, 'rename', [1], 1), R.RosterError);
  });

  test('validateRecord shapes', async () => {
    const record = await make(0, R.GENESIS, 'create', [1, 2], 1, 't');
    R.validateRecord(record);
    R.validateRecord({ ...record, created: '2024-01-01T00:00:00Z' }, { served: true });
    R.validateRecord(record, { served: true });
    const bad = [
      { ...record, created: '2024-01-01T00:00:00Z' },
      { ...record, title: '\ud800' },
      { ...record, title: 'a\udc00' },
      { ...record, title: 'x'.repeat(201) },
      { ...record, n: true },
      { ...record, n: 1.5 },
      { ...record, by: 0 },
      { ...record, subjects: [1, 2 ** 53] },
      { ...record, sig: '' },
      { ...record, sig: 'not base64' },
      [record],
      null,
    ];
    for (const c of bad) assert.throws(() => R.validateRecord(c), (e) => e instanceof R.RosterError && e.code === 'bad_request', JSON.stringify(c));
    R.validateRecord({ ...record, title: '😀'.repeat(200) }); // counted in code points
  });
});

describe('rules', () => {
  test('a valid chain gives members, owner, title and heads', async () => {
    const records = await chain(
      ['create', [1, 2, 3], 1, 't', 'alice'],
      ['add', [4], 1, null, 'alice'],
      ['remove', [2], 1, null, 'alice'],
      ['title', [], 3, 'u', 'bob'],
    );
    const state = await R.verifyChain(GID, records, keysOf('alice', 'bob'));
    assert.deepEqual([[...state.members].sort(), state.owner, state.title, state.n, state.head], [[1, 3, 4], 1, 'u', 3, records[3].hash]);
    assert.deepEqual(Object.fromEntries(state.heads), Object.fromEntries(records.map((r) => [r.hash, r.n])));
    assert.ok(state.memberAt(2, records[1].hash) && !state.memberAt(2, records[2].hash));
    assert.equal(state.joinedAt(4), 1);
    assert.equal(state.joinedAt(2), null);
    assert.equal(state.isMember(3), true);
    state.members.add(99); // a copy
    assert.equal(state.isMember(99), false);
  });

  test('owner hand-over prefers the earliest join, then the smallest id', async () => {
    const records = await chain(
      ['create', [1, 9], 1, null, 'alice'],
      ['add', [3, 5], 1, null, 'alice'],
      ['remove', [9], 1, null, 'alice'],
      ['add', [9], 1, null, 'alice'],
      ['leave', [1], 1, null, 'alice'],
    );
    assert.equal((await R.verifyChain(GID, records, keysOf('alice'))).owner, 3);
  });

  test('the last member leaving closes the group', async () => {
    const records = await chain(['create', [1], 1, null, 'alice'], ['leave', [1], 1, null, 'alice']);
    const state = await R.verifyChain(GID, records, keysOf('alice'));
    assert.deepEqual([state.closed, state.owner, state.members.size], [true, null, 0]);
    const after = await make(2, records[1].hash, 'add', [2], 1);
    assert.equal(await codeOf([...records, after]), 'bad_request');
  });

  test('verifyRecord checks in the server\'s order and leaves the state as it was', async () => {
    const records = await chain(['create', [1, 2], 1, null, 'alice']);
    const state = await R.verifyChain(GID, records, keysOf('alice', 'bob'));
    const record = await make(1, records[0].hash, 'add', [3], 2, null, 'bob');
    assert.equal(await outcome(R.verifyRecord(state, record, keysOf('alice'))), 'bad_signature');
    assert.equal(await outcome(R.verifyRecord(state, record, keysOf('alice', 'bob'))), 'forbidden');
    const stale = { ...(await make(2, records[0].hash, 'add', [3], 1)), hash: '0'.repeat(64) };
    assert.equal(await outcome(R.verifyRecord(state, stale, keysOf('alice'))), 'stale_roster');
    assert.deepEqual([state.n, [...state.members].sort()], [0, [1, 2]]);
    const good = await make(1, records[0].hash, 'add', [3], 1);
    await R.verifyRecord(state, good, async (r) => keysOf('alice')(r));
    assert.equal(state.n, 1);
  });

  test('a signing key of null is bad_signature; a gid or state of another group is refused', async () => {
    const records = await chain(['create', [1], 1, null, 'alice']);
    assert.equal(await codeOf(records, { signingKey: () => null }), 'bad_signature');
    assert.equal(await codeOf(records, { gid: GID.toUpperCase() }), 'bad_request');
    assert.equal(await codeOf(records, { state: new R.RosterState('00000000-0000-4000-8000-000000000008') }), 'bad_request');
  });

  test('a key whose kid is not the record\'s sig_kid does not sign it', async () => {
    const [record] = await chain(['create', [1], 1, null, 'alice']);
    const relabelled = { ...record, sig_kid: keys.bob.sigKid };
    assert.equal(await codeOf([relabelled], { signingKey: () => keys.alice.sigPublic }), 'bad_signature');
    assert.equal(await codeOf([record], { signingKey: () => keys.alice.sigPublic }), 'ok');
  });

  test('signingKey is asked once per (by, sig_kid)', async () => {
    const records = await chain(
      ['create', [1, 2], 1, null, 'alice'],
      ['title', [], 1, 'a', 'alice'],
      ['title', [], 2, 'b', 'bob'],
      ['title', [], 1, 'c', 'alice'],
    );
    let calls = 0;
    await R.verifyChain(GID, records, async (record) => {
      calls += 1;
      return keysOf('alice', 'bob')(record);
    });
    assert.equal(calls, 2);
  });
});

describe('incremental verification and persisted states', () => {
  test('continuing from a state gives the same result and leaves it unchanged', async () => {
    const v = vector('roster.json');
    const key = rosterSigningKey(v.devices, v.identities);
    const whole = await R.verifyChain(v.gid, v.records, key);
    const first = await R.verifyChain(v.gid, v.records.slice(0, 4), key);
    const before = first.toJson();
    const rest = await R.verifyChain(v.gid, v.records.slice(4), key, { state: first });
    assert.deepEqual(rest.toJson(), whole.toJson());
    assert.deepEqual(first.toJson(), before);
    const restored = R.RosterState.fromJson(JSON.parse(JSON.stringify(first.toJson())));
    assert.deepEqual(restored.toJson(), before);
    assert.deepEqual([...restored.members].sort(), [...first.members].sort());
    assert.deepEqual((await R.verifyChain(v.gid, v.records.slice(4), key, { state: restored })).toJson(), whole.toJson());
    assert.equal(await codeOf(v.records.slice(3), { signingKey: key, gid: v.gid, state: first }), 'stale_roster');
  });

  test('copy is independent', async () => {
    const v = vector('roster.json');
    const key = rosterSigningKey(v.devices, v.identities);
    const state = await R.verifyChain(v.gid, v.records.slice(0, 2), key);
    const copied = state.copy();
    await R.verifyRecord(copied, v.records[2], key, { served: true });
    assert.deepEqual([state.n, copied.n], [1, 2]);
    assert.notEqual(state.title, copied.title);
    assert.equal(state.memberAt(3, v.records[2].hash), false);
  });

  test('a Python-persisted state reads and continues', async () => {
    const v = vector('roster.json');
    const state = R.RosterState.fromJson(v.final);
    assert.deepEqual(state.toJson(), v.final);
    assert.deepEqual([...state.members].sort((a, b) => a - b), v.states.at(-1).members);
    assert.equal(state.owner, v.states.at(-1).owner);
  });
});

describe('Python-made roster vector', () => {
  test('the chain verifies record by record to the stated states', async () => {
    const v = vector('roster.json');
    const key = rosterSigningKey(v.devices, v.identities);
    const state = new R.RosterState(v.gid);
    for (const [i, record] of v.records.entries()) {
      await R.verifyRecord(state, record, key, { served: true });
      const got = {
        n: state.n,
        head: state.head,
        members: [...state.members].sort((a, b) => a - b),
        owner: state.owner,
        title: state.title,
        closed: state.closed,
      };
      assert.deepEqual(got, v.states[i], `record ${i}`);
    }
    assert.deepEqual(state.toJson(), v.final);
    assert.deepEqual((await R.verifyChain(v.gid, v.records, key)).toJson(), v.final);
    for (const c of v.member_at) assert.equal(state.memberAt(c.user, c.head), c.expect, JSON.stringify(c));
  });

  test('every tamper is refused with the stated error', async () => {
    const v = vector('roster.json');
    const fields = new Set(v.tampered.filter((t) => t.name.includes('.')).map((t) => t.name.split('.')[1]));
    for (const field of R.SIGNED_FIELDS) assert.ok(fields.has(field), field);
    const key = rosterSigningKey(v.devices, v.identities);
    for (const c of v.tampered) {
      const records = [...v.records.slice(0, c.prefix), ...c.tail];
      assert.equal(await codeOf(records, { signingKey: key, gid: c.gid ?? v.gid }), c.error, c.name);
      // One by one through verifyRecord gives the same error.
      const state = new R.RosterState(c.gid ?? v.gid);
      let code = 'ok';
      for (const record of records) {
        code = await outcome(R.verifyRecord(state, record, key, { served: true }));
        if (code !== 'ok') break;
      }
      assert.equal(code, c.error, `${c.name} (one by one)`);
    }
  });

  test('unsigned changes are accepted', async () => {
    const v = vector('roster.json');
    const key = rosterSigningKey(v.devices, v.identities);
    for (const c of v.accepted) {
      assert.equal(await codeOf([...v.records.slice(0, c.prefix), ...c.tail], { signingKey: key, gid: v.gid }), 'ok', c.name);
    }
  });

  test('the vector\'s key lookup refuses a device certified by another identity', async () => {
    const v = vector('roster.json');
    const key = rosterSigningKey(v.devices, v.identities);
    const rogue = v.devices['1'][2];
    assert.equal(rogue.sig_kid, keys.bob.sigKid);
    assert.equal(await key({ by: 1, sig_kid: rogue.sig_kid }), null);
    assert.notEqual(await key({ by: 2, sig_kid: rogue.sig_kid }), null);
  });
});
