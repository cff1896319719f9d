/**
 * The security page: this device's fingerprints, key file export, passphrase change,
 * my devices (revoke), and each contact's devices with a locally kept "verified" mark.
 * @module ui/security-view
 */

import { api } from '../api.js';
import * as device from '../device.js';
import { avatar, fingerprint, fullTime, h, replace, toast } from './dom.js';
import { confirmDialog } from './dialogs.js';
import { passphraseField } from './passphrase-field.js';

export class SecurityView {
  constructor(root, app, { record, navigate, onRecord }) {
    Object.assign(this, { root, app, record, navigate, onRecord });
    this.ownList = h('ul.device-list', { 'aria-label': 'Your devices' });
    this.contactsEl = h('div.contacts');
    this.listener = (e) => ['trust', 'list'].includes(e.detail.what) && this.renderContacts();
    app.addEventListener('change', this.listener);
    this.build();
  }

  destroy() {
    this.app.removeEventListener('change', this.listener);
  }

  build() {
    const r = this.record;
    const back = h('a.button.secondary.small', { href: '/', onclick: (e) => { e.preventDefault(); this.navigate('/'); } }, '← Back to chats');
    const page = h('main.security', { 'aria-labelledby': 'security-title' },
      h('header.security-head', {}, back, h('h1', { id: 'security-title' }, 'Security and devices')),
      h('section.panel', { 'aria-labelledby': 'this-device' },
        h('h2', { id: 'this-device' }, 'This device'),
        h('p.hint', {}, 'Compare these fingerprints with what your contacts see for you.'),
        h('dl.fingerprints', {},
          h('dt', {}, 'Device'), h('dd', {}, `#${r.device_id} · ${r.username}`),
          h('dt', {}, 'Signing key'), h('dd.fp', { id: 'my-sig-fp' }, fingerprint(r.sig_kid)),
          h('dt', {}, 'Encryption key'), h('dd.fp', { id: 'my-enc-fp' }, fingerprint(r.enc_kid))),
        h('div.row', {},
          h('button.primary', { type: 'button', id: 'export-key-file', onclick: () => this.exportKeyFile() }, 'Export key file'),
          h('span.hint', {}, 'The file is locked with your passphrase; it works here and in the Python client.'))),
      this.passphrasePanel(),
      h('section.panel', { 'aria-labelledby': 'my-devices' }, h('h2', { id: 'my-devices' }, 'Your devices'), this.ownList),
      h('section.panel', { 'aria-labelledby': 'contacts' }, h('h2', { id: 'contacts' }, 'Contacts’ devices'),
        h('p.hint', {}, 'Mark a device as verified after comparing its fingerprint with the person (in person or on a call). Marks are kept in this browser only.'),
        this.contactsEl));
    replace(this.root, page);
    this.renderOwn();
    this.renderContacts(true);
  }

  passphrasePanel() {
    const current = h('input', { id: 'old-passphrase', type: 'password', autocomplete: 'current-password' });
    const next = passphraseField({ label: 'New passphrase', warn: false });
    const errors = h('div.form-error', { role: 'alert', hidden: true });
    const submit = h('button.primary', { type: 'submit' }, 'Change passphrase');
    const form = h('form.stack', { novalidate: true }, h('label', { for: 'old-passphrase' }, 'Current passphrase'), current, next.el, errors, submit);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      errors.hidden = true;
      const problem = !current.value ? 'Enter the current passphrase.' : next.check();
      if (problem) {
        errors.textContent = problem;
        errors.hidden = false;
        return;
      }
      submit.disabled = true;
      submit.textContent = 'Changing…';
      try {
        this.record = await device.changePassphrase(this.record, current.value, next.value);
        this.onRecord(this.record);
        current.value = '';
        next.clear();
        toast('Passphrase changed. Export the key file again if you keep a copy.');
      } catch (error) {
        errors.textContent = error instanceof device.WrongPassphrase ? 'The current passphrase is wrong. Nothing was changed.' : 'Changing the passphrase failed.';
        errors.hidden = false;
      } finally {
        submit.disabled = false;
        submit.textContent = 'Change passphrase';
      }
    });
    return h('section.panel', { 'aria-labelledby': 'change-pp' }, h('h2', { id: 'change-pp' }, 'Change passphrase'), form);
  }

  exportKeyFile() {
    const { blob, filename } = device.keyFile(this.record);
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: filename });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  async renderOwn() {
    let devices;
    try {
      ({ devices } = await api.myDevices());
    } catch {
      replace(this.ownList, h('li.muted', {}, 'Could not load your devices.'));
      return;
    }
    devices.sort((a, b) => Boolean(a.revoked) - Boolean(b.revoked) || b.id - a.id);
    replace(this.ownList, devices.map((d) => {
      const mine = d.id === this.record.device_id;
      return h(`li.device${d.revoked ? '.revoked' : ''}`, { dataset: { deviceId: d.id } },
        h('div.device-main', {},
          h('div.device-name', {}, d.name, mine ? h('span.tag', {}, 'this device') : null, d.revoked ? h('span.tag.tag-muted', {}, 'revoked') : null),
          h('div.fp.small', {}, fingerprint(d.sig_kid)),
          h('div.hint', {}, `Added ${fullTime(d.created)}${d.revoked ? ` · revoked ${fullTime(d.revoked)}` : ''}`)),
        !d.revoked && !mine && h('button.danger.small', { type: 'button', 'aria-label': `Revoke ${d.name}`, onclick: () => this.revoke(d) }, 'Revoke'));
    }));
  }

  async revoke(d) {
    if (!(await confirmDialog({ title: 'Revoke device', message: `Revoke “${d.name}”? It is disconnected at once and can no longer read new messages.`, confirm: 'Revoke', danger: true }))) return;
    try {
      await api.revokeDevice(d.id);
      toast(`Revoked ${d.name}.`);
    } catch (error) {
      toast(error.detail ?? 'Revoking failed.', 'error');
    }
    this.renderOwn();
  }

  async renderContacts(refetch = false) {
    const names = new Set(Object.keys(this.app.trust.state.users));
    for (const conv of this.app.conversations.values()) for (const m of conv.members) names.add(m.username);
    names.delete(this.app.me.username);
    const sorted = [...names].sort();
    if (!sorted.length) {
      replace(this.contactsEl, h('p.muted', {}, 'No contacts yet.'));
      return;
    }
    const entries = await Promise.all(sorted.map(async (name) => {
      try {
        return [name, await this.app.directory.active(name, { force: refetch })];
      } catch {
        return [name, null];
      }
    }));
    if (refetch) for (const [, entry] of entries) if (entry) await this.app.trust.observe(entry.user, entry.devices);
    replace(this.contactsEl, entries.map(([name, entry]) => {
      const alerts = this.app.trust.pending([name]);
      return h('section.contact', { 'aria-label': name, dataset: { username: name } },
        h('h3', {}, avatar(name), name),
        alerts.length ? h('div.callout.callout-warn', { role: 'alert' }, `${alerts.length} unacknowledged device change${alerts.length > 1 ? 's' : ''}. Open the conversation to review.`) : null,
        !entry ? h('p.muted', {}, 'Could not load devices.') : !entry.devices.length ? h('p.muted', {}, 'No active devices.') : h('ul.device-list', {}, entry.devices.map((d) => {
          const verified = this.app.trust.isVerified(name, d);
          const id = `verify-${name}-${d.id}`;
          return h(`li.device${verified ? '.verified' : ''}`, { dataset: { deviceId: d.id } },
            h('div.device-main', {},
              h('div.device-name', {}, d.name, verified ? h('span.tag.tag-ok', {}, '✓ verified') : null),
              h('div.fp.small', {}, h('span.fp-label', {}, 'sign '), fingerprint(d.sig_kid)),
              h('div.fp.small.muted', {}, h('span.fp-label', {}, 'enc '), fingerprint(d.enc_kid))),
            h('label.check', { for: id }, h('input', { type: 'checkbox', id, checked: verified, onchange: (e) => this.app.trust.setVerified(name, d.id, e.target.checked) }), ' Verified'));
        })));
    }));
  }
}
