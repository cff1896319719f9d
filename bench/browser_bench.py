"""Benchmark of the browser app's crypto and its conversation view, in headless Chromium.

Measures, in Debian's Chromium against a live daphne (started here unless --url):
  * device setup: two RSA-3072 pairs, proof, register, PBKDF2 lock, unlock check
    (device.js setupDevice, the code behind the setup screen);
  * seal of one text message for 2, 10 and 50 recipient devices (protocol.js);
  * open + verify of one message (protocol.js openEnvelope);
  * opening a conversation with 1,000 messages of history in the real UI: from the click
    in the conversation list until the newest page (50 messages) is decrypted, verified
    and in the DOM (goal <= 2 s), and loading one older page by scrolling up;
  * rosters (rosters.js, as the app runs it: records from the API, verifyChain with the
    signers' certificates checked, the state written to IndexedDB, the server's member
    list compared): a 1,000-record roster of a 500-member group from scratch (goal
    <= 1 s) and one new record on a verified state (goal <= 20 ms);
  * a burst of 50 messages typed into the composer of a direct chat: from the first
    Enter until all 50 are acknowledged (goal <= 2 s), with the longest main-thread task
    meanwhile (the page stays responsive);
  * identity (PROTOCOL §7): linking a second browser to an account holding 1,000
    messages through the real UI: approval (the click on Approve) to "ready" on the new
    device (goal <= 3 s), and the history transfer that follows, wall time and wraps per
    second (goal <= 10 s for 1,000); the rewrap alone in the page (8 in parallel); and
    checking a contact with 10 devices: identity proof and 10 device proofs and certs
    (identity.js checkUser with nothing cached, goal <= 50 ms);
  * attachments (PROTOCOL §10.2): encrypting and decrypting a 50 MiB file with the app's
    code (uploads.js encryptFile, 4 MiB steps; attachments.js FileDecryptor fed 4 MiB at
    a time, as downloads.js does), with and without the
    SHA-256 of the whole file, next to raw AES-256-GCM in WebCrypto in the same page (one
    call over the whole buffer) (goal >= 100 MiB/s, within 2x of raw); and the time from a
    5 MB photo's `message` frame arriving in the receiver's page until its thumbnail is
    decoded in the conversation (goal <= 300 ms).

  * local search (issue 14) over 10,000 messages with this device's real keys: building
    the in-memory index, storing it encrypted in IndexedDB (search-store.js buckets),
    loading it back (decrypt + index, as on unlock), and queries typed letter by letter
    (p50/p95/max, goal <= 200 ms); in the UI after unlock: from the unlock to the first
    results, and from a keystroke to the results painted (the 120 ms debounce included).

Not a test: it prints a table (and --json writes the numbers).
Usage: .venv/bin/python bench/browser_bench.py [--url http://127.0.0.1:8000] [--runs 5]
       [--only setup,crypto,history,rosters,burst,identity,attachments,search]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "Bench-login-Quartz-91!"
PASSPHRASE = "violet harbour kettle mountain"
HISTORY = 1000
BURST = 50
SECTIONS = ("setup", "crypto", "history", "rosters", "burst", "identity", "attachments", "search")
SEARCH_MESSAGES = 10_000
FILE_MIB = 50

JS_REGISTER = """async ([username, password]) => {
  const { api, request } = await import('/static/chat/api.js');
  await api.session();
  return (await request('POST', '/api/users/', { username, password })).user;
}"""

JS_SETUP = """async ([me, passphrase, runs]) => {
  const device = await import('/static/chat/device.js');
  const out = [];
  for (let i = 0; i < runs; i += 1) {
    const marks = {};
    const t0 = performance.now();
    await device.setupDevice({ me, name: `bench ${i}`, passphrase, replace: i > 0,
      onStep: (s) => { marks[s] = performance.now() - t0; } });
    out.push({ total: performance.now() - t0, ...marks });
  }
  return out;
}"""

JS_CRYPTO = """async ([runs]) => {
  const p = await import('/static/chat/protocol.js');
  const subtle = crypto.subtle;
  const sender = await p.generateDeviceKeys(3072);
  const pairs = await Promise.all(Array.from({ length: 50 }, () => subtle.generateKey(
    { ...p.OAEP, modulusLength: 3072, publicExponent: new Uint8Array([1, 0, 1]) }, true, ['encrypt', 'decrypt'])));
  const recipients = await Promise.all(pairs.map(async (pair) => [await p.computeKid(await p.spkiOf(pair.publicKey)), pair.publicKey]));
  const text = p.textMessage('The quick brown fox jumps over the lazy dog. '.repeat(4));
  const seal = {};
  for (const n of [2, 10, 50]) {
    const keys = Object.fromEntries([[sender.encKid, sender.encPublic], ...recipients.slice(0, n - 1)]);
    const times = [];
    for (let i = 0; i < runs + 1; i += 1) {
      const t0 = performance.now();
      await p.sealEnvelope({ plaintext: text, conversationId: 7, senderId: 1, clientMsgId: p.newClientMsgId(), n: i + 1, head: '', senderKeys: sender, recipientKeys: keys });
      if (i > 0) times.push(performance.now() - t0);
    }
    seal[n] = times;
  }
  const receiver = await p.generateDeviceKeys(3072);
  const opens = [];
  for (let i = 0; i < runs * 4 + 1; i += 1) {
    const clientMsgId = p.newClientMsgId();
    const envelope = await p.sealEnvelope({ plaintext: text, conversationId: 7, senderId: 1, clientMsgId, n: i + 1, head: '',
      senderKeys: sender, recipientKeys: { [receiver.encKid]: receiver.encPublic, [sender.encKid]: sender.encPublic } });
    const t0 = performance.now();
    await p.openEnvelope(envelope, { conversationId: 7, senderId: 1, clientMsgId, deviceKeys: receiver, sigPublic: sender.sigPublic });
    if (i > 0) opens.push(performance.now() - t0);
  }
  return { seal, open: opens };
}"""

# The roster as the app verifies it (rosters.js RosterStore.observe): records from the API
# (stubbed in the page with the chain), verifyChain with each signer's certificate checked
# under her identity, the state written to IndexedDB, the server's members compared.
JS_ROSTER = """async ([chain, rounds]) => {
  const P = await import('/static/chat/protocol.js');
  const R = await import('/static/chat/roster.js');
  const { api } = await import('/static/chat/api.js');
  const { RosterStore } = await import('/static/chat/rosters.js');
  const { gid, devices, identities, records } = chain;
  const recordSigner = async (userId, sigKid) => {
    const device = (devices[String(userId)] ?? []).find((d) => d.sig_kid === sigKid);
    if (!device) return null;
    const idPublic = await P.importIdentityKey(P.b64decode(identities[String(userId)]));
    const ok = await P.verifyDeviceCert(idPublic, userId, device.enc_kid, device.sig_kid, device.cert);
    return ok ? P.importSigningKey(P.b64decode(device.sig_spki)) : null;
  };
  // the server's view of the group after `upTo` records (not timed)
  const viewAt = async (id, upTo) => {
    const state = await R.verifyChain(gid, records.slice(0, upTo), (r) => recordSigner(r.by, r.sig_kid));
    const members = [...state.members].map((u) => ({ id: u, username: `user${u}` }));
    return { id, kind: 'group', gid, title: state.title, members, owner: { id: state.owner, username: `user${state.owner}` },
      roster_head: { n: state.n, hash: state.head }, last_seq: 0, created: records[0].created };
  };
  api.roster = async (id, after) => ({ records: records.filter((r) => r.n > after && r.n < api.upTo) });
  api.keyOwner = async () => { throw new Error('not needed'); };
  const full = await viewAt(0, records.length);
  const before = await viewAt(0, records.length - 1);
  const whole = [];
  const one = [];
  for (let round = 0; round < rounds; round += 1) {
    const store = new RosterStore({ me: { id: 1, username: 'user1' }, directory: { recordSigner } });
    const id = 900000 + Date.now() % 100000 * 10 + round;
    api.upTo = records.length;
    let t0 = performance.now();
    const entry = await store.observe({ ...full, id });
    whole.push(performance.now() - t0);
    if (entry.tampered || entry.state.members.size !== full.members.length) throw new Error(`not verified: ${JSON.stringify(entry.tampered)}`);
    const second = id + 5;
    api.upTo = records.length - 1;
    await store.observe({ ...before, id: second });
    api.upTo = records.length;
    t0 = performance.now();
    const next = await store.observe({ ...full, id: second });
    one.push(performance.now() - t0);
    if (next.tampered || next.state.n !== records.length - 1) throw new Error('the one more record did not verify');
  }
  return { whole, one, records: records.length, members: full.members.length };
}"""

# Type `count` messages into the open conversation's composer in one task (each Enter
# submits), then wait until all are acknowledged (filed as sent); longest tasks meanwhile.
JS_BURST = """async ([count]) => {
  const long = [];
  const observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) long.push(e.duration); });
  observer.observe({ type: 'longtask' });
  const sent = () => document.querySelectorAll('.messages .msg.own:not(.pending)').length;
  const before = sent();
  const box = document.querySelector('#composer-input');
  let frames = 0;
  let worstFrame = 0;
  let last = performance.now();
  const t0 = performance.now();
  for (let i = 1; i <= count; i += 1) {
    box.value = `burst message ${i}`;
    box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
  }
  const typed = performance.now() - t0;
  await new Promise((resolve) => {
    const tick = (now) => {
      frames += 1;
      worstFrame = Math.max(worstFrame, now - last);
      last = now;
      if (sent() >= before + count) resolve();
      else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  const ms = performance.now() - t0;
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  const flagged = document.querySelectorAll('.messages .msg[data-state=failed], .messages .msg[data-state=replayed], .messages .msg[data-state=out_of_order], .messages .msg.send-failed').length;
  return { ms, typed, longest_task_ms: Math.max(0, ...long), long_tasks: long.length, worst_frame_gap_ms: worstFrame, frames, flagged };
}"""


# Local search over `count` generated messages with this device's keys (the keystore
# unlocked in the page): build the index, store it encrypted, load it back, query it.
JS_SEARCH = """async ([userId, passphrase, count, queries]) => {
  const store = await import('/static/chat/store.js');
  const { unlockKeystore } = await import('/static/chat/keystore.js');
  const { SearchIndex } = await import('/static/chat/search-index.js');
  const { SearchStore } = await import('/static/chat/search-store.js');
  const record = await store.getKeystore(userId);
  const keys = await unlockKeystore(record, passphrase);
  const common = ('the a to and of in is it you that for on with are this be at have not was but we can so what do if ' +
    'meeting tomorrow lunch project deadline report call today week monday friday office home coffee café train ' +
    'station harbour budget review draft plan idea photo trip weekend dinner birthday party thanks sorry great ' +
    'naïve résumé über straße приветствие مرحبا 東京').split(' ');
  let seed = 7;
  const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const word = () => (rand() < 0.8 ? common[Math.floor(rand() ** 2 * common.length)] : `w${Math.floor(rand() * 20000)}`);
  const start = Date.parse('2025-01-01T00:00:00Z');
  const docs = Array.from({ length: count }, (_, i) => ({
    conversation: 1 + (i % 25), id: i + 1, seq: Math.floor(i / 25) + 1, senderId: 1 + (i % 3), sender: `user${i % 3}`,
    created: new Date(start + i * 60000).toISOString(),
    text: Array.from({ length: 4 + Math.floor(rand() * 18) }, word).join(' '),
  }));
  let t0 = performance.now();
  const index = new SearchIndex();
  for (const doc of docs) index.add(doc);
  const build = performance.now() - t0;
  const searchStore = new SearchStore({ userId, deviceId: record.device_id, keys, kv: store.kv });
  await searchStore.open();
  await searchStore.clearBuckets();
  t0 = performance.now();
  const dirty = index.takeDirty();
  for (const [c, b] of dirty) await searchStore.write(c, b, index.bucketRows(c, b));
  const save = performance.now() - t0;
  const stored = await store.kv.list(`search:${userId}:${record.device_id}:c`);
  const bytes = stored.reduce((sum, [, v]) => sum + v.ct.length, 0);
  t0 = performance.now();
  const fresh = new SearchIndex();
  await searchStore.loadAll(({ conversation, rows }) => fresh.addRows(conversation, rows));
  const load = performance.now() - t0;
  const times = [];
  const per = {};
  for (const q of queries) {
    for (let i = 1; i <= q.length; i += 1) {
      const typed = q.slice(0, i);
      const t = performance.now();
      const { total } = fresh.search(typed, { limit: 50 });
      const ms = performance.now() - t;
      times.push(ms);
      if (i === q.length) per[q] = { ms, total };
    }
  }
  return { build, save, load, bytes, buckets: dirty.length, docs: fresh.size, times, per };
}"""


JS_REWRAP = """async ([count]) => {
  const p = await import('/static/chat/protocol.js');
  const [me, target] = await Promise.all([p.generateDeviceKeys(3072), p.generateDeviceKeys(3072)]);
  const envelopes = await Promise.all(Array.from({ length: count }, (_, i) => p.sealEnvelope({
    plaintext: p.textMessage(`m${i}`), conversationId: 7, senderId: 1, clientMsgId: p.newClientMsgId(), n: i + 1, head: '',
    senderKeys: me, recipientKeys: { [me.encKid]: me.encPublic } })));
  const t0 = performance.now();
  let next = 0;
  const worker = async () => { while (next < count) await p.rewrapContentKey(envelopes[next++], me, target.encPublic); };
  await Promise.all(Array.from({ length: 8 }, worker));
  return { count, ms: performance.now() - t0 };
}"""

JS_CONTACT_CHECK = """async ([devices, runs]) => {
  const p = await import('/static/chat/protocol.js');
  const { KeyCache, checkUser } = await import('/static/chat/identity.js');
  const userId = 4242;
  const identity = await p.generateIdentityKey(3072);
  const keys = await Promise.all(Array.from({ length: devices }, () => p.generateDeviceKeys(3072)));
  const user = { id: userId, username: 'contact' };
  const identityBody = { user, previous: [], identity: { id_spki: p.b64encode(identity.spki), id_kid: identity.kid,
    proof: await p.signIdentityProof(identity, userId), upgrade: null, created: new Date().toISOString() } };
  const devicesBody = { user, devices: await Promise.all(keys.map(async (k, i) => ({ id: i + 1, name: `d${i}`,
    enc_spki: p.b64encode(k.encSpki), sig_spki: p.b64encode(k.sigSpki), enc_kid: k.encKid, sig_kid: k.sigKid,
    proof: await p.signDeviceProof(k, userId), cert: await p.signDeviceCert(identity, userId, k.encKid, k.sigKid),
    created: new Date().toISOString(), revoked: null }))) };
  const times = [];
  for (let i = 0; i < runs + 1; i += 1) {
    const t0 = performance.now();
    const entry = await checkUser(identityBody, devicesBody, new KeyCache());
    const ms = performance.now() - t0;
    if (!entry.current || entry.devices.some((d) => !d.valid || d.certBy !== identity.kid)) throw new Error('checks failed');
    if (i > 0) times.push(ms);
  }
  return times;
}"""

# A `size`-MiB file encrypted with the app's code (uploads.js encryptFile: 4 MiB steps of
# the file read once, into one buffer of the blob's size), decrypted as downloads.js does
# (FileDecryptor fed 4 MiB at a time, finish() checks length and SHA-256), and raw
# AES-256-GCM over the whole buffer in one call.
JS_FILE_CRYPTO = """async ([mib, runs]) => {
  const A = await import('/static/chat/attachments.js');
  const { encryptFile } = await import('/static/chat/uploads.js');
  const size = mib * 2 ** 20;
  const data = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(data.subarray(at, at + 65536));
  const file = new Blob([data]);
  const key = await crypto.subtle.importKey('raw', crypto.getRandomValues(new Uint8Array(32)), 'AES-GCM', false, ['encrypt', 'decrypt']);
  const out = { encrypt: [], hash: [], decrypt: [], raw_encrypt: [], raw_decrypt: [] };
  for (let run = 0; run < runs + 1; run += 1) {
    let t0 = performance.now();
    const sha256 = await A.fileSha256(file);
    const hash = performance.now() - t0;
    t0 = performance.now();
    const sealed = await encryptFile(data);
    const encrypt = performance.now() - t0;
    const body = sealed.body;
    const meta = { blob: 'A'.repeat(22), key: btoa(String.fromCharCode(...sealed.key)), prefix: btoa(String.fromCharCode(...sealed.prefix)), size, sha256, name: 'x', mime: 'application/octet-stream' };
    t0 = performance.now();
    const decryptor = new A.FileDecryptor(meta);
    const step = 64 * (65536 + 16);
    for (let at = 0; at < body.length; at += step) await decryptor.update(body.subarray(at, at + step));
    const plain = await decryptor.finish();
    const decrypt = performance.now() - t0;
    if (plain.length !== size || plain[size - 1] !== data[size - 1]) throw new Error('round trip failed');
    const iv = crypto.getRandomValues(new Uint8Array(12));
    t0 = performance.now();
    const raw = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, data);
    const rawEncrypt = performance.now() - t0;
    t0 = performance.now();
    await crypto.subtle.decrypt({ name: 'AES-GCM', iv }, key, raw);
    const rawDecrypt = performance.now() - t0;
    if (run === 0) continue; // warm-up
    out.encrypt.push(encrypt); out.hash.push(hash); out.decrypt.push(decrypt);
    out.raw_encrypt.push(rawEncrypt); out.raw_decrypt.push(rawDecrypt);
  }
  return out;
}"""

# In the receiver's page before the app starts: note when each `message` frame arrives
# (this listener is added before the app's, so it runs first).
JS_FRAME_CLOCK = """(() => {
  const Native = window.WebSocket;
  window.__messageFrames = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (typeof e.data === 'string' && /"type":\\s*"message"/.test(e.data)) window.__messageFrames.push(performance.now());
      });
    }
  };
})();"""

# Resolves when the next thumbnail appears in the log and is decoded: the time from the
# last `message` frame before it.
JS_THUMB_WAIT = """() => {
  const seen = new Set(document.querySelectorAll('.messages .att-img'));
  window.__thumb = new Promise((resolve) => {
    const check = async () => {
      const img = [...document.querySelectorAll('.messages .att-img')].find((el) => !seen.has(el));
      if (!img) return false;
      observer.disconnect();
      await img.decode();
      const shown = performance.now();
      const frame = window.__messageFrames.filter((t) => t <= shown).pop();
      resolve({ ms: shown - frame, src: img.src.slice(0, 16) });
      return true;
    };
    const observer = new MutationObserver(() => { check(); });
    observer.observe(document.querySelector('.messages'), { childList: true, subtree: true });
  });
}"""


JS_TRANSFER_JOB = """async ([userId, deviceId]) => {
  const store = await import('/static/chat/store.js');
  void userId;
  return store.getItem(`transfer:${deviceId}`);
}"""


def ms(values):
    values = list(values)
    return {
        "median_ms": round(statistics.median(values), 1),
        "min_ms": round(min(values), 1),
        "max_ms": round(max(values), 1),
        "n": len(values),
    }


def register_in_ui(browser, base_url: str, username: str):
    """A new account set up through the pages (register, set up this browser); its context and page."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/register/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.fill("#id_password_again", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#device-name")
    t0 = time.perf_counter()
    page.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
    page.get_by_label("Passphrase (again)").fill(PASSPHRASE)
    page.check("#understand")
    page.get_by_role("button", name="Set up this browser").click()
    page.wait_for_selector("body[data-ready=true]", timeout=120_000)
    return context, page, (time.perf_counter() - t0) * 1000


def unlock(page) -> None:
    page.goto("/")
    page.fill("#unlock-passphrase", PASSPHRASE)
    page.get_by_role("button", name="Unlock").click()
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)


def setup_and_crypto(browser, base_url, tag, runs, results, sections):
    """Device setup (setupDevice) and raw crypto, in a page of the app's origin."""
    ctx = browser.new_context(base_url=base_url)
    page = ctx.new_page()
    page.goto("/login/")
    if "setup" in sections:
        me = page.evaluate(JS_REGISTER, [f"setup{tag}", PASSWORD])
        setups = page.evaluate(JS_SETUP, [me, PASSPHRASE, runs])
        results["device_setup"] = ms(s["total"] for s in setups)
        results["device_setup_steps_median_ms"] = {
            step: round(statistics.median(s[step] for s in setups), 1)
            for step in ("identity", "register", "lock", "check", "done")
        }
    if "crypto" in sections:
        crypto = page.evaluate(JS_CRYPTO, [runs * 2])
        results["seal"] = {f"{n}_devices": ms(crypto["seal"][str(n)]) for n in (2, 10, 50)}
        results["open_verify"] = ms(crypto["open"])
    ctx.close()


def history(browser, base_url, tag, runs, results):
    """A conversation with 1,000 messages (written from Python, v2), opened in the real UI."""
    from scripts.people.seeding import seed_direct

    viewer, vpage, setup_ms = register_in_ui(browser, base_url, f"viewer{tag}")
    results["device_setup_ui_incl_form_ms"] = round(setup_ms, 1)
    t0 = time.perf_counter()
    seed_direct(
        base_url,
        f"viewer{tag}",
        [f"History message {i} of {HISTORY}" for i in range(1, HISTORY + 1)],
    )
    results["seeding"] = {"messages": HISTORY, "seconds": round(time.perf_counter() - t0, 1)}
    opens = []
    older = []
    for _ in range(max(1, runs // 2) + 1):
        unlock(vpage)
        item = vpage.locator(".conv-item").first
        item.wait_for()
        t0 = time.perf_counter()
        item.click()
        vpage.wait_for_function(
            """() => {
              const msgs = document.querySelectorAll('.messages .msg');
              return msgs.length >= 50 && msgs[msgs.length - 1].dataset.seq === '1000';
            }""",
            polling="raf",
            timeout=60_000,
        )
        opens.append((time.perf_counter() - t0) * 1000)
        failed = vpage.locator(".messages .bubble-failed").count()
        if failed:
            raise SystemExit(f"{failed} messages failed to open")
        t0 = time.perf_counter()
        vpage.locator(".messages").evaluate("el => { el.scrollTop = 0; }")
        vpage.wait_for_function(
            "() => document.querySelectorAll('.messages .msg').length >= 100",
            polling="raf",
            timeout=60_000,
        )
        older.append((time.perf_counter() - t0) * 1000)
    # the first open warms the browser (module cache, key imports); report the rest
    results["open_conversation_1000"] = ms(opens[1:])
    results["open_conversation_1000_first_ms"] = round(opens[0], 1)
    results["scroll_back_one_page"] = ms(older[1:])
    (REPO / "var").mkdir(exist_ok=True)
    vpage.screenshot(path=str(REPO / "var" / "bench-conversation.png"))
    viewer.close()


def rosters(browser, base_url, runs, results):
    """Verify a 1,000-record roster of a 500-member group (RSA-3072 signers, made by
    tests/js/roster_bench.mjs under node) the way the app does, in Chromium."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "chain.json"
        subprocess.run(
            ["node", str(REPO / "tests/js/roster_bench.mjs"), "3072", str(out)],
            check=True,
            capture_output=True,
            cwd=REPO,
        )
        chain = json.loads(out.read_text())
    ctx = browser.new_context(base_url=base_url)
    page = ctx.new_page()
    page.goto("/login/")
    measured = page.evaluate(JS_ROSTER, [chain, max(3, runs)])
    # the first round warms the page (module loading, first IndexedDB open)
    results["roster_1000_records_500_members"] = ms(measured["whole"][1:])
    results["roster_1000_first_ms"] = round(measured["whole"][0], 1)
    results["roster_one_more_record"] = ms(measured["one"][1:])
    ctx.close()


def burst(browser, base_url, tag, runs, results):
    """50 messages typed in quick succession into a direct chat (the other side written
    from Python): until all are acknowledged, and the longest main-thread task."""
    from scripts.people.seeding import seed_direct

    context, page, _ = register_in_ui(browser, base_url, f"burster{tag}")
    peer = seed_direct(base_url, f"burster{tag}", ["ready when you are"])
    rounds = []
    for _ in range(max(1, runs // 2)):
        # each round on a fresh page: a new socket (the server's rate limit is per
        # connection) and a full send budget in the tab
        unlock(page)
        page.locator(".conv-item", has_text=peer["username"]).click()
        page.locator(".messages .msg").last.wait_for()
        rounds.append(page.evaluate(JS_BURST, [BURST]))
    if any(r["flagged"] for r in rounds):
        raise SystemExit(f"flagged messages after a burst: {rounds}")
    results["burst_50_acknowledged"] = ms(r["ms"] for r in rounds)
    results["burst_50_longest_task_ms"] = round(max(r["longest_task_ms"] for r in rounds), 1)
    results["burst_50_worst_frame_gap_ms"] = round(max(r["worst_frame_gap_ms"] for r in rounds), 1)
    results["burst_50_typing_ms"] = round(statistics.median(r["typed"] for r in rounds), 1)
    context.close()


def identity(browser, base_url, tag, runs, results):
    """Link new browsers to an account holding 1,000 messages (written from Python, v2),
    through the UI: approval to ready on the new device, and the history transfer that
    follows; then the rewrap alone and a contact check with 10 devices, in the page."""
    from scripts.people.seeding import seed_direct

    owner = f"linker{tag}"
    viewer, vpage, _ = register_in_ui(browser, base_url, owner)
    seed_direct(
        base_url, owner, [f"History message {i} of {HISTORY}" for i in range(1, HISTORY + 1)]
    )
    unlock(vpage)  # the app reads the conversation list again
    viewer_device = vpage.evaluate(
        "async () => (await (await import('/static/chat/api.js')).api.myDevices()).devices.find((d) => !d.revoked).id"
    )
    ready_ms, transfers = [], []
    for i in range(min(3, max(1, runs // 2))):
        linker = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
        lpage = linker.new_page()
        lpage.goto("/login/")
        lpage.fill("#id_username", owner)
        lpage.fill("#id_password", PASSWORD)
        lpage.click("button[type=submit]")
        lpage.get_by_role("button", name="Link this browser").click()
        lpage.fill("#device-name", f"bench link {i}")
        lpage.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
        lpage.get_by_label("Passphrase (again)").fill(PASSPHRASE)
        lpage.get_by_role("button", name="Show link code").click()
        lpage.wait_for_selector("#link-code", timeout=60_000)
        approve = vpage.locator("dialog[open]").get_by_role("button", name="Approve")
        approve.wait_for(timeout=10_000)
        t0 = time.perf_counter()
        approve.click()
        lpage.wait_for_selector("body[data-ready=true]", timeout=60_000)
        ready_ms.append((time.perf_counter() - t0) * 1000)
        vpage.wait_for_selector(".transfer-card[data-transfer-state=done]", timeout=120_000)
        job = vpage.evaluate(JS_TRANSFER_JOB, [0, viewer_device])
        wall = (
            datetime.fromisoformat(job["finished"].replace("Z", "+00:00"))
            - datetime.fromisoformat(job["started"].replace("Z", "+00:00"))
        ).total_seconds()
        transfers.append({"wrapped": job["wrapped"], "seconds": wall})
        vpage.locator(".transfer-card").get_by_role("button", name="Close").click()
        linker.close()
        # make room under MAX_DEVICES for the next run
        vpage.evaluate(
            """async (name) => { const { api } = await import('/static/chat/api.js');
               const d = (await api.myDevices()).devices.find((x) => x.name === name && !x.revoked);
               await api.revokeDevice(d.id); }""",
            f"bench link {i}",
        )
    results["link_approval_to_ready"] = ms(ready_ms)
    results["history_transfer"] = {
        "runs": transfers,
        "median_seconds": round(statistics.median(t["seconds"] for t in transfers), 2),
        "median_wraps_per_s": round(
            statistics.median(t["wrapped"] / t["seconds"] for t in transfers), 1
        ),
    }
    rewrap = vpage.evaluate(JS_REWRAP, [400])
    results["rewrap_only_wraps_per_s"] = round(rewrap["count"] / rewrap["ms"] * 1000, 1)
    results["contact_check_10_devices"] = ms(vpage.evaluate(JS_CONTACT_CHECK, [10, runs * 2]))
    viewer.close()


def mib_per_s(ms_values, mib=FILE_MIB):
    return round(mib / (statistics.median(ms_values) / 1000), 1)


def attachments(browser, base_url, tag, runs, results):
    """Attachment crypto in the page, and a 5 MB photo's thumbnail after its message arrives."""
    import io

    from PIL import Image

    from scripts.people.browser import ChatUser
    from scripts.people.photos import make_photo

    ctx = browser.new_context(base_url=base_url)
    page = ctx.new_page()
    page.goto("/login/")
    measured = page.evaluate(JS_FILE_CRYPTO, [FILE_MIB, max(2, runs // 2)])
    ctx.close()
    results["file_encrypt_50mib"] = {
        "mib_per_s": mib_per_s(measured["encrypt"]),
        "with_sha256_mib_per_s": mib_per_s(
            [e + h for e, h in zip(measured["encrypt"], measured["hash"], strict=True)]
        ),
        "raw_aes_gcm_mib_per_s": mib_per_s(measured["raw_encrypt"]),
        **ms(measured["encrypt"]),
    }
    results["file_decrypt_50mib"] = {
        "with_sha256_mib_per_s": mib_per_s(measured["decrypt"]),
        "raw_aes_gcm_mib_per_s": mib_per_s(measured["raw_decrypt"]),
        "sha256_alone_mib_per_s": mib_per_s(measured["hash"]),
        **ms(measured["decrypt"]),
    }

    # a ~5 MB photo (4600 x 3450 with grain, JPEG quality 97) from alice to bob
    tmp = Path(tempfile.mkdtemp(prefix="bench-photo-"))
    photo = tmp / "photo.jpg"
    make_photo(photo, size=(4600, 3450))
    image = Image.open(photo)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=97)
    photo.write_bytes(out.getvalue())
    alice = ChatUser(browser, base_url, f"photoa{tag}", viewport={"width": 1280, "height": 900})
    bob = ChatUser(browser, base_url, f"photob{tag}", viewport={"width": 1280, "height": 900})
    bob.context.add_init_script(JS_FRAME_CLOCK)
    alice.start()
    bob.start()
    alice.open_direct(bob.username)
    alice.send("photos")
    bob.open_conversation(alice.username)
    bob.expect_message("photos")
    thumbs = []
    for i in range(max(3, runs)):
        bob.page.evaluate(JS_THUMB_WAIT)
        alice.page.set_input_files("#attach-input", str(photo))
        alice.send(f"photo {i}")
        got = bob.page.evaluate("window.__thumb")
        assert got["src"].startswith("data:image/"), got
        thumbs.append(got["ms"])
    results["photo_bytes"] = photo.stat().st_size
    results["thumbnail_after_message"] = ms(thumbs)
    if alice.problems or bob.problems:
        raise SystemExit(f"page problems: {alice.problems} {bob.problems}")
    alice.close()
    bob.close()


SEARCH_QUERIES = [
    "meeting",
    "tomorrow lunch",
    "cafe",
    "the",
    "a",
    "resume",
    "strasse",
    "w1234",
    "project deadline review",
    "zzz",
]


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def search(browser, base_url, tag, runs, results):
    """Local search over 10,000 messages: the module figures in the page, then the UI."""
    context, page, _ = register_in_ui(browser, base_url, f"searcher{tag}")
    user_id = int(page.locator("#app").get_attribute("data-user-id"))
    rounds = [
        page.evaluate(JS_SEARCH, [user_id, PASSPHRASE, SEARCH_MESSAGES, SEARCH_QUERIES])
        for _ in range(max(1, runs // 2))
    ]
    times = [t for r in rounds for t in r["times"]]
    results["search_messages"] = rounds[0]["docs"]
    results["search_build_ms"] = ms(r["build"] for r in rounds)
    results["search_store_encrypted_ms"] = ms(r["save"] for r in rounds)
    results["search_load_decrypt_ms"] = ms(r["load"] for r in rounds)
    results["search_stored_kib"] = round(rounds[0]["bytes"] * 3 / 4 / 1024, 1)
    results["search_buckets"] = rounds[0]["buckets"]
    results["search_query_ms"] = {
        "p50": round(percentile(times, 0.5), 2),
        "p95": round(percentile(times, 0.95), 2),
        "max": round(max(times), 2),
        "n": len(times),
    }
    results["search_query_totals"] = {q: v["total"] for q, v in rounds[0]["per"].items()}
    # the UI: unlock (the app loads the stored index), then type
    box = page.locator("#conv-search")
    first, keystroke = [], []
    for _ in range(max(1, runs // 2)):
        page.goto("/")
        page.fill("#unlock-passphrase", PASSPHRASE)
        page.get_by_role("button", name="Unlock").click()
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        t0 = time.perf_counter()
        box.fill("meeting")
        page.locator(".msg-result").first.wait_for(timeout=60_000)
        first.append((time.perf_counter() - t0) * 1000)
        for q in ("deadline", "lunch tomorrow", "cafe"):
            box.fill("")
            page.locator(".msg-search").wait_for(state="hidden")
            box.press_sequentially(q[:-1])
            page.wait_for_function(
                "(q) => document.querySelector('.msg-result .result-text mark') !== null", arg=q
            )
            stamp = page.evaluate(
                """(q) => new Promise((resolve) => {
                  const box = document.querySelector('#conv-search');
                  const t0 = performance.now();
                  const list = document.querySelector('.msg-results');
                  const observer = new MutationObserver(() => {
                    observer.disconnect();
                    requestAnimationFrame(() => resolve(performance.now() - t0));
                  });
                  observer.observe(list, { childList: true });
                  box.value = q;
                  box.dispatchEvent(new Event('input', { bubbles: true }));
                })""",
                q,
            )
            keystroke.append(stamp)
    results["search_ui_first_results_after_unlock"] = ms(first)
    results["search_ui_keystroke_to_results"] = ms(keystroke)
    context.close()


def run(base_url: str, runs: int, sections=SECTIONS) -> dict:
    results: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        results["chromium"] = browser.version
        tag = str(int(time.time()))[-6:]
        if "setup" in sections or "crypto" in sections:
            setup_and_crypto(browser, base_url, tag, runs, results, sections)
        if "history" in sections:
            history(browser, base_url, tag, runs, results)
        if "rosters" in sections:
            rosters(browser, base_url, runs, results)
        if "burst" in sections:
            burst(browser, base_url, tag, runs, results)
        if "identity" in sections:
            identity(browser, base_url, tag, runs, results)
        if "attachments" in sections:
            attachments(browser, base_url, tag, runs, results)
        if "search" in sections:
            search(browser, base_url, tag, runs, results)
        browser.close()
    return results


def report(results: dict, runs: int) -> None:
    print(f"Chromium {results['chromium']}, RSA-3072, medians over {runs}+ runs")
    if "device_setup" in results:
        print(
            f"  device setup (setupDevice)          {results['device_setup']['median_ms']:8.1f} ms"
        )
        print(f"    cumulative steps                  {results['device_setup_steps_median_ms']}")
    if "seal" in results:
        for n in (2, 10, 50):
            print(
                f"  seal, {n:2d} recipient devices         {results['seal'][f'{n}_devices']['median_ms']:8.1f} ms"
            )
        print(
            f"  open + verify one message           {results['open_verify']['median_ms']:8.1f} ms"
        )
    if "open_conversation_1000" in results:
        print(
            f"  device setup via UI (submit->ready) {results['device_setup_ui_incl_form_ms']:8.1f} ms"
        )
        print(
            f"  open conversation, {HISTORY} messages   {results['open_conversation_1000']['median_ms']:8.1f} ms  (goal <= 2000; first {results['open_conversation_1000_first_ms']} ms)"
        )
        print(
            f"  scroll back one page (50)           {results['scroll_back_one_page']['median_ms']:8.1f} ms"
        )
    if "roster_1000_records_500_members" in results:
        print(
            f"  roster, 1,000 records, 500 members  {results['roster_1000_records_500_members']['median_ms']:8.1f} ms  (goal <= 1000; first {results['roster_1000_first_ms']} ms)"
        )
        print(
            f"  roster, one more record             {results['roster_one_more_record']['median_ms']:8.1f} ms  (goal <= 20)"
        )
    if "burst_50_acknowledged" in results:
        print(
            f"  burst of {BURST}, until all acknowledged  {results['burst_50_acknowledged']['median_ms']:8.1f} ms  (goal <= 2000)"
        )
        print(
            f"    longest task {results['burst_50_longest_task_ms']} ms, worst frame gap {results['burst_50_worst_frame_gap_ms']} ms, typing {results['burst_50_typing_ms']} ms"
        )


def report_search(results: dict) -> None:
    if "search_query_ms" not in results:
        return
    q = results["search_query_ms"]
    print(
        f"  search, {results['search_messages']:,} messages: query p50 {q['p50']} ms, p95 {q['p95']} ms, max {q['max']} ms  (goal <= 200; {q['n']} queries typed letter by letter)"
    )
    print(
        f"    build {results['search_build_ms']['median_ms']} ms, store encrypted {results['search_store_encrypted_ms']['median_ms']} ms ({results['search_buckets']} buckets, {results['search_stored_kib']} KiB), load + decrypt {results['search_load_decrypt_ms']['median_ms']} ms"
    )
    print(
        f"    UI: unlock -> first results {results['search_ui_first_results_after_unlock']['median_ms']} ms; keystroke -> results painted {results['search_ui_keystroke_to_results']['median_ms']} ms (debounce 120 ms included)"
    )


def report_identity(results: dict) -> None:
    if "link_approval_to_ready" not in results:
        return
    transfer = results["history_transfer"]
    print(
        f"  link: approval -> new device ready  {results['link_approval_to_ready']['median_ms']:8.1f} ms  (goal <= 3000)"
    )
    print(
        f"  history transfer, {HISTORY} messages   {transfer['median_seconds'] * 1000:8.1f} ms  (goal <= 10000; {transfer['median_wraps_per_s']} wraps/s)"
    )
    print(
        f"  rewrap alone (8 in parallel)        {results['rewrap_only_wraps_per_s']:8.1f} wraps/s"
    )
    print(
        f"  identity + certs, 10 devices        {results['contact_check_10_devices']['median_ms']:8.1f} ms  (goal <= 50)"
    )


def report_attachments(results: dict) -> None:
    if "file_encrypt_50mib" not in results:
        return
    enc, dec = results["file_encrypt_50mib"], results["file_decrypt_50mib"]
    print(
        f"  encrypt {FILE_MIB} MiB (app)               {enc['mib_per_s']:8.1f} MiB/s  (goal >= 100; raw AES-GCM {enc['raw_aes_gcm_mib_per_s']} MiB/s; with SHA-256 {enc['with_sha256_mib_per_s']})"
    )
    print(
        f"  decrypt {FILE_MIB} MiB + SHA-256 (app)     {dec['with_sha256_mib_per_s']:8.1f} MiB/s  (goal >= 100; raw AES-GCM {dec['raw_aes_gcm_mib_per_s']} MiB/s; SHA-256 alone {dec['sha256_alone_mib_per_s']})"
    )
    print(
        f"  thumbnail after message, {results['photo_bytes'] / 1e6:.1f} MB photo {results['thumbnail_after_message']['median_ms']:6.1f} ms  (goal <= 300; max {results['thumbnail_after_message']['max_ms']} ms)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server (default: start one with a fresh db)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    sections = tuple(args.only.split(",")) if args.only else SECTIONS
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {sorted(unknown)}")
    stack = None
    base_url = args.url
    if not base_url:
        from scripts.devstack import DjangoStack

        stack = DjangoStack(1).start()
        base_url = stack.base_url
    try:
        results = run(base_url, args.runs, sections)
    finally:
        if stack is not None:
            stack.stop()
    report(results, args.runs)
    report_identity(results)
    report_attachments(results)
    report_search(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
