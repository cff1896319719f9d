// static/chat/payloads.js on the Python-made vectors (tests/vectors/payloads.json): the
// builders (Python's snake_case names in camelCase), validation with Python's error codes,
// the reaction emoji rule, and the reducer giving exactly what Python's apply_payloads gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as P from '../../static/chat/payloads.js';
import { ProtocolError } from '../../static/chat/protocol.js';
import { vector } from './helpers.mjs';

const V = vector('payloads.json');
const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

/** `value` with every `{"$repeat": [s, n]}` spelled out (make_payloads.py's expand). */
function expand(value) {
  if (Array.isArray(value)) return value.map(expand);
  if (value && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === '$repeat') return value.$repeat[0].repeat(value.$repeat[1]);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expand(v)]));
  }
  return value;
}

function code(fn) {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ProtocolError, `${error}`);
    return error.code;
  }
  return null;
}

test('the builders give Python’s payloads and error codes', () => {
  for (const [name, args, result] of V.builders) {
    const fn = P[camel(name)];
    assert.equal(typeof fn, 'function', name);
    const call = () => fn(...expand(args));
    const label = `${name}${JSON.stringify(args).slice(0, 60)}`;
    if (result.error) assert.equal(code(call), result.error, label);
    else assert.deepEqual(call(), expand(result), label);
  }
});

test('validatePayload accepts and refuses what Python does, with its codes', () => {
  for (const [name, payload, error] of V.validate) {
    const obj = expand(payload);
    if (error === null) assert.equal(P.validatePayload(obj), obj, name);
    else assert.equal(code(() => P.validatePayload(obj)), error, name);
  }
});

test('isReactionEmoji agrees with Python on every vector', () => {
  for (const [s, ok] of V.emoji) assert.equal(P.isReactionEmoji(s), ok, JSON.stringify(s));
  assert.equal(P.isReactionEmoji('\ud83d'), false); // a lone surrogate
  assert.equal(P.isReactionEmoji(null), false);
});

test('applyPayloads folds every vector conversation as Python does', () => {
  for (const { name, messages, shown } of V.reduce) {
    assert.deepEqual(P.applyPayloads(structuredClone(messages)), shown, name);
  }
});
