// Benchmark (not a test): verify a 1,000-record roster of a 500-member group, whole and one
// record more. `node tests/js/roster_bench.mjs [bits] [out.json]` makes the chain (signers
// certified by their identities, RSA of `bits`, 3072 by default), measures it under Node and
// writes it to out.json; `measure(chainJson)` is what a browser page imports to measure it
// in Chromium (the module uses nothing but WebCrypto and static/chat).
import * as P from '../../static/chat/protocol.js';
import * as R from '../../static/chat/roster.js';

const MEMBERS = 500;
const RECORDS = 1000;
const SIGNERS = 5; // users 1..5, each with one certified device

/** The chain and what a reader knows of its signers (devices, identities), as JSON. */
export async function makeChain(bits = 3072) {
  const gid = P.newClientMsgId();
  const signers = [];
  for (let user = 1; user <= SIGNERS; user += 1) {
    const identity = await P.generateIdentityKey(bits);
    const device = await P.generateDeviceKeys(bits);
    signers.push({ user, device, identity });
  }
  const devices = {};
  const identities = {};
  for (const { user, device, identity } of signers) {
    identities[user] = P.b64encode(identity.spki);
    devices[user] = [{
      enc_kid: device.encKid,
      sig_kid: device.sigKid,
      sig_spki: P.b64encode(device.sigSpki),
      cert: await P.signDeviceCert(identity, user, device.encKid, device.sigKid),
    }];
  }
  const records = [];
  const add = async (signer, op, subjects, title = null) => {
    const n = records.length;
    const prev = n ? records[n - 1].hash : R.GENESIS;
    const record = await R.makeRecord(signer.device, { gid, n, prev, op, subjects, by: signer.user, title });
    records.push({ ...record, created: new Date(Date.UTC(2024, 0, 1, 0, 0, n)).toISOString().replace('.000', '') });
  };
  await add(signers[0], 'create', Array.from({ length: MEMBERS }, (_, i) => i + 1), 'bench');
  let out = MEMBERS + 1;
  while (records.length < RECORDS) {
    const k = records.length;
    if (k % 3 === 0) await add(signers[k % SIGNERS], 'title', [], `title ${k}`);
    else if (k % 3 === 1) await add(signers[0], 'add', [out]);
    else {
      await add(signers[0], 'remove', [out]);
      out += 1;
    }
  }
  return { gid, devices, identities, records, extra: null, signers };
}

/** A signingKey like a client's: the device of `by` holding sig_kid, certified by her identity. */
function lookup(devices, identities) {
  return async (record) => {
    const user = String(record.by);
    const device = (devices[user] ?? []).find((d) => d.sig_kid === record.sig_kid);
    if (!device) return null;
    const idPublic = await P.importIdentityKey(P.b64decode(identities[user]));
    const ok = await P.verifyDeviceCert(idPublic, record.by, device.enc_kid, device.sig_kid, device.cert);
    return ok ? P.importSigningKey(P.b64decode(device.sig_spki)) : null;
  };
}

/** Milliseconds to verify `chain.records` from scratch, then the last record alone on the state before it. */
export async function measure(chain, rounds = 3) {
  const { gid, devices, identities, records } = chain;
  const head = records.slice(0, -1);
  const last = records.slice(-1);
  const whole = [];
  const one = [];
  for (let i = 0; i < rounds; i += 1) {
    let start = performance.now();
    const state = await R.verifyChain(gid, records, lookup(devices, identities));
    whole.push(performance.now() - start);
    if (state.members.size !== MEMBERS) throw new Error(`members ${state.members.size}`);
    const before = await R.verifyChain(gid, head, lookup(devices, identities));
    start = performance.now();
    await R.verifyChain(gid, last, lookup(devices, identities), { state: before });
    one.push(performance.now() - start);
  }
  return { records: records.length, members: MEMBERS, whole_ms: whole, one_more_ms: one };
}

if (typeof process !== 'undefined' && import.meta.url === `file://${process.argv[1]}`) {
  const bits = Number(process.argv[2] ?? 3072);
  const chain = await makeChain(bits);
  delete chain.signers;
  if (process.argv[3]) (await import('node:fs')).writeFileSync(process.argv[3], JSON.stringify(chain));
  console.log(JSON.stringify({ runtime: `node ${process.version}`, bits, ...(await measure(chain)) }));
}
