// Made by tests/test_js_interop.py: JS makes a fresh device, its proof and keystore, and
// envelopes from it and from the fixed alice; prints them as JSON for Python to open.
import * as P from '../../static/chat/protocol.js';
import { lockKeystore } from '../../static/chat/keystore.js';
import { fixedKeys } from './helpers.mjs';

const CAROL_ID = 3;
const { alice, bob } = await fixedKeys();
const carol = await P.generateDeviceKeys(2048);
const context = { conversationId: 9, senderId: CAROL_ID, clientMsgId: P.newClientMsgId() };
const aliceContext = { conversationId: 9, senderId: 1, clientMsgId: P.newClientMsgId() };
const text = 'from JS: Grüße 👋 "q" \\ \n';

const output = {
  carol: {
    user_id: CAROL_ID,
    enc_spki: P.b64encode(carol.encSpki),
    sig_spki: P.b64encode(carol.sigSpki),
    enc_kid: carol.encKid,
    sig_kid: carol.sigKid,
    proof: await P.signDeviceProof(carol, CAROL_ID),
  },
  passphrase: 'Cafe\u0301 passphrase',
  keystore: null,
  from_carol: {
    context,
    text,
    envelope: await P.sealEnvelope({
      plaintext: P.textMessage(text),
      ...context,
      senderKeys: carol,
      recipientKeys: { [carol.encKid]: carol.encPublic, [alice.encKid]: alice.encPublic, [bob.encKid]: bob.encPublic },
    }),
  },
  from_alice: {
    context: aliceContext,
    text,
    envelope: await P.sealEnvelope({
      plaintext: P.textMessage(text),
      ...aliceContext,
      senderKeys: alice,
      recipientKeys: { [bob.encKid]: bob.encPublic },
    }),
  },
};
output.keystore = await lockKeystore(carol, {
  userId: CAROL_ID, username: 'carol', deviceId: 31, passphrase: output.passphrase, iterations: 100000,
});
process.stdout.write(JSON.stringify(output));
