/**
 * The security page (/security/): alerts about my own account first (a device my
 * identity did not certify, with "Revoke it"), then my contacts with the state of their
 * safety number (each opens its safety number page), my devices (certified or not,
 * revoke), this device's key file and passphrase, and an advanced view with the raw key
 * fingerprints.
 * @module ui/security-view
 */

import { api } from '../api.js';
import * as device from '../device.js';
import { avatar, fingerprint, fullTime, h, replace, toast } from './dom.js';
import { confirmDialog } from './dialogs.js';
import { passphraseField } from './passphrase-field.js';
import { renderNotices } from './conversation-notices.js';

/** The contacts this device knows of: conversation members and users it holds trust for. */
export function contactNames(app) {
  const names = new Set();
  for (const conv of app.conversations.values()) for (const m of conv.members) names.add(m.username);
  for (const record of Object.values(app.trust.state.users)) if (record.username) names.add(record.username);
  names.delete(app.me.username);
  return [...names].sort();
}

/** A contact's safety-number state as a short tag: [text, class]. */
export function contactTag(app, username) {
  const uid = app.trust.userIdOf(username);
  const record = uid === undefined ? null : app.trust.record(uid);
  if (!record) return ['not checked yet', 'tag-muted'];
  if (record.pending) return ['safety number changed', 'tag-danger'];
  if (!record.id_kid) return ['not upgraded', 'tag-muted'];
  return record.verified ? ['✓ verified', 'tag-ok'] : ['not verified', 'tag-muted'];
}

export class SecurityView {
  constructor(root, app, { record, navigate, onRecord }) {
    Object.assign(this, { root, app, record, navigate, onRecord });
    this.ownAlerts = h('div.alerts.own-alerts');
    this.ownList = h('ul.device-list', { 'aria-label': 'Your devices' });
    this.contactsEl = h('ul.contact-list', { 'aria-label': 'Contacts' });
    this.advancedEl = h('div.advanced-body');
    this.listener = (e) => {
      if (['trust', 'list', 'devices'].includes(e.detail.what)) this.renderContacts();
      if (e.detail.what === 'trust') this.renderAlerts();
    };
    app.addEventListener('change', this.listener);
    this.build();
  }

  destroy() {
    this.app.removeEventListener('change', this.listener);
  }

  build() {
    const r = this.record;
    const back = h('a.button.secondary.small', { href: '/', onclick: (e) => { e.preventDefault(); this.navigate('/'); } }, '← Back to chats');
    const advanced = h('details.panel.advanced', {},
      h('summary', {}, 'Advanced: keys and fingerprints'),
      h('p.hint', {}, 'Safety numbers cover all of a person’s devices. These raw fingerprints are for experts and for comparing with the Python client.'),
      h('dl.fingerprints', {},
        h('dt', {}, 'Device'), h('dd', {}, `#${r.device_id} · ${r.username}`),
        h('dt', {}, 'Identity key'), h('dd.fp', { id: 'my-id-fp' }, r.id_kid ? fingerprint(r.id_kid) : 'none (not upgraded)'),
        h('dt', {}, 'Signing key'), h('dd.fp', { id: 'my-sig-fp' }, fingerprint(r.sig_kid)),
        h('dt', {}, 'Encryption key'), h('dd.fp', { id: 'my-enc-fp' }, fingerprint(r.enc_kid))),
      this.advancedEl);
    advanced.addEventListener('toggle', () => advanced.open && this.renderAdvanced());
    const page = h('main.security', { 'aria-labelledby': 'security-title' },
      h('header.security-head', {}, back, h('h1', { id: 'security-title', tabindex: -1 }, 'Security and devices')),
      this.ownAlerts,
      h('section.panel', { 'aria-labelledby': 'contacts' }, h('h2', { id: 'contacts' }, 'Safety numbers'),
        h('p.hint', {}, 'Compare the safety number with each person, in person or on a call you trust, then mark them as verified. It changes only when their identity changes, not when they add a device.'),
        this.contactsEl),
      h('section.panel', { 'aria-labelledby': 'my-devices' }, h('h2', { id: 'my-devices' }, 'Your devices'),
        h('p.hint', {}, 'To add a browser, sign in there and choose “Link this browser”; this device then asks you to approve it.'),
        this.ownList),
      h('section.panel', { 'aria-labelledby': 'this-device' },
        h('h2', { id: 'this-device' }, 'This device’s key file'),
        h('div.row', {},
          h('button.primary', { type: 'button', id: 'export-key-file', onclick: () => this.exportKeyFile() }, 'Export key file'),
          h('span.hint', {}, 'Locked with your passphrase; it works here and in the Python client.'))),
      this.passphrasePanel(),
      advanced);
    replace(this.root, page);
    page.querySelector('h1').focus();
    this.renderAlerts();
    this.renderOwn();
    this.renderContacts();
    this.app.directory.refresh(this.app.me.username).catch(() => {});
  }

  renderAlerts() {
    const notices = this.app.trust.noticesFor([this.app.me.username]).filter((n) => n.blocking);
    renderNotices(this.ownAlerts, notices, { navigate: this.navigate });
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
    let status;
    try {
      [{ devices }, status] = await Promise.all([api.myDevices(), this.app.directory.load(this.app.me.username).then(() => this.app.directory.statusOf(this.app.me.username))]);
    } catch {
      replace(this.ownList, h('li.muted', {}, 'Could not load your devices.'));
      return;
    }
    const usable = new Set((status?.usable ?? []).map((d) => d.id));
    devices.sort((a, b) => Boolean(a.revoked) - Boolean(b.revoked) || a.id - b.id);
    replace(this.ownList, devices.map((d) => {
      const mine = d.id === this.record.device_id;
      const certified = usable.has(d.id);
      return h(`li.device${d.revoked ? '.revoked' : ''}${!d.revoked && !certified ? '.uncertified' : ''}`, { dataset: { deviceId: d.id } },
        h('div.device-main', {},
          h('div.device-name', {}, d.name,
            mine ? h('span.tag', {}, 'this device') : null,
            d.revoked ? h('span.tag.tag-muted', {}, 'revoked') : certified ? h('span.tag.tag-ok', {}, 'certified') : h('span.tag.tag-danger', {}, 'not certified by your identity')),
          h('div.hint', {}, `Added ${fullTime(d.created)}${d.revoked ? ` · revoked ${fullTime(d.revoked)}` : ''}`)),
        !d.revoked && !mine && h(`button.${certified ? 'secondary' : 'danger'}.small`, { type: 'button', 'aria-label': `Revoke ${d.name}`, onclick: () => this.revoke(d) }, 'Revoke'));
    }));
  }

  async revoke(d) {
    if (!(await confirmDialog({ title: 'Revoke device', message: `Revoke “${d.name}”? It is signed out at once and can no longer read new messages.`, confirm: 'Revoke', danger: true }))) return;
    try {
      await this.app.revokeOwnDevice(d.id);
      toast(`Revoked ${d.name}.`);
    } catch (error) {
      toast(error.detail ?? 'Revoking failed.', 'error');
    }
    this.renderOwn();
  }

  renderContacts() {
    const names = contactNames(this.app);
    if (!names.length) {
      replace(this.contactsEl, h('li.muted', {}, 'No contacts yet.'));
      return;
    }
    replace(this.contactsEl, names.map((name) => {
      const [text, kind] = contactTag(this.app, name);
      const href = `/security/?contact=${encodeURIComponent(name)}`;
      return h('li.contact-row', { dataset: { username: name } },
        avatar(name),
        h('span.contact-name', {}, name),
        h(`span.tag.${kind}`, {}, text),
        h('a.button.secondary.small', { href, 'aria-label': `Safety number with ${name}`, onclick: (e) => { e.preventDefault(); this.navigate(href); } }, 'Safety number'));
    }));
  }

  async renderAdvanced() {
    const names = contactNames(this.app);
    const entries = await Promise.all(names.map(async (name) => {
      try {
        return [name, this.app.directory.statusOf(name) ?? ((await this.app.directory.load(name)) && this.app.directory.statusOf(name))];
      } catch {
        return [name, null];
      }
    }));
    replace(this.advancedEl, entries.map(([name, status]) => h('section.contact', { 'aria-label': `${name}’s keys`, dataset: { username: name } },
      h('h3', {}, avatar(name), name),
      !status ? h('p.muted', {}, 'Could not load.') : [
        status.entry.current ? h('div.fp.small', {}, h('span.fp-label', {}, 'identity '), fingerprint(status.entry.current.kid)) : h('p.muted', {}, 'No identity key.'),
        h('ul.device-list', {}, status.entry.devices.filter((d) => !d.revoked).map((d) => h('li.device', {},
          h('div.device-main', {},
            h('div.device-name', {}, d.name, status.usable.includes(d) ? null : h('span.tag.tag-danger', {}, 'not trusted')),
            h('div.fp.small', {}, h('span.fp-label', {}, 'sign '), fingerprint(d.sig_kid)),
            h('div.fp.small.muted', {}, h('span.fp-label', {}, 'enc '), fingerprint(d.enc_kid)))))),
      ])));
  }
}
