// static/chat/ordering.js: the §9 ledger on the Python-made scenarios (each step's verdict,
// rollbacks, re-flagged v1 messages, forgetting, persistence in Python's form) and edge cases.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as O from '../../static/chat/ordering.js';
import { vector } from './helpers.mjs';

const judgeArgs = ({ id, seq, sender_id, client_msg_id, sig_kid, v, n }) => ({
  id, seq, senderId: sender_id, clientMsgId: client_msg_id, sigKid: sig_kid, v, n,
});

/** Run a scenario's steps, asserting each stated result; return the ledger. */
function run(steps) {
  let ledger = new O.Ledger();
  for (const step of steps) {
    if (step.judge) assert.equal(ledger.judge(judgeArgs(step.judge)), step.verdict, JSON.stringify(step));
    else if ('is_rollback' in step) assert.equal(ledger.isRollback(step.is_rollback), step.expect, JSON.stringify(step));
    else if ('verdict_of' in step) assert.equal(ledger.verdictOf(step.verdict_of), step.expect, JSON.stringify(step));
    else if (step.take_changed) assert.deepEqual(ledger.takeChanged(), step.expect, JSON.stringify(step));
    else if ('forget_from' in step) ledger.forgetFrom(step.forget_from);
    else ledger = O.Ledger.fromJson(JSON.parse(JSON.stringify(ledger.toJson())));
  }
  return ledger;
}

describe('Python-made ordering scenarios', () => {
  for (const scenario of vector('ordering.json').scenarios) {
    test(scenario.name, () => {
      assert.deepEqual(run(scenario.steps).toJson(), scenario.ledger);
    });
  }

  test('they cover every verdict', () => {
    const verdicts = new Set(vector('ordering.json').scenarios.flatMap((s) => s.steps.filter((x) => x.judge).map((x) => x.verdict)));
    assert.deepEqual([...verdicts].sort(), [O.OK, O.OUT_OF_ORDER, O.REPLAYED, O.ROLLBACK].sort());
  });

  test('a Python-persisted ledger reads and judges the same', () => {
    for (const scenario of vector('ordering.json').scenarios) {
      assert.deepEqual(O.Ledger.fromJson(scenario.ledger).toJson(), scenario.ledger);
    }
  });
});

const message = (id, seq, n, { senderId = 1, clientMsgId = null, sigKid = 'a'.repeat(64), v = 2 } = {}) => ({
  id, seq, n, senderId, sigKid, v, clientMsgId: clientMsgId ?? `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`,
});

describe('edge cases', () => {
  test('a rollback is not recorded', () => {
    const ledger = new O.Ledger();
    assert.equal(ledger.judge(message(1, 1, 1)), O.OK);
    assert.equal(ledger.judge(message(2, 1, 2)), O.ROLLBACK);
    assert.equal(ledger.verdictOf(2), null);
    assert.equal(ledger.judge(message(2, 2, 2)), O.OK);
  });

  test('a flagged message still holds its seq', () => {
    const ledger = new O.Ledger();
    assert.equal(ledger.judge(message(1, 1, 5)), O.OK);
    assert.equal(ledger.judge(message(2, 2, 4)), O.OUT_OF_ORDER);
    assert.equal(ledger.judge(message(3, 2, 6)), O.ROLLBACK);
    assert.equal(ledger.isRollback(1), true);
  });

  test('only ok messages count for counters', () => {
    const ledger = new O.Ledger();
    assert.equal(ledger.judge(message(1, 1, 5)), O.OK);
    assert.equal(ledger.judge(message(2, 2, 4)), O.OUT_OF_ORDER);
    assert.equal(ledger.judge(message(3, 3, 6)), O.OK);
  });

  test('a v2 message needs a counter', () => {
    assert.throws(() => new O.Ledger().judge(message(1, 1, null)), TypeError);
  });

  test('forgetFrom keeps what is below', () => {
    const ledger = new O.Ledger();
    for (let i = 1; i <= 5; i += 1) ledger.judge(message(i, i, i));
    ledger.forgetFrom(3);
    assert.deepEqual(ledger.toJson().map((row) => row[0]), [1, 2]);
    assert.equal(ledger.judge(message(9, 3, 3)), O.OK);
    assert.equal(ledger.judge(message(10, 4, 2)), O.OUT_OF_ORDER);
  });

  test('many messages loaded backwards stay ok', () => {
    const ledger = new O.Ledger();
    for (let i = 2000; i >= 1; i -= 1) {
      assert.equal(ledger.judge(message(i, i, i, { sigKid: (i % 3 ? 'a' : 'b').repeat(64) })), O.OK);
    }
    assert.equal(ledger.isRollback(1999), true);
  });
});
