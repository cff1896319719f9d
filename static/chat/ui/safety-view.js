/**
 * The safety number page of one contact (/security/?contact=<username>): the 60 digits
 * in 12 groups of 5, how to compare them, and "Mark as verified" for the person (not per
 * device). A pending identity change shows the new number with "Accept"; a contact not
 * upgraded has no number and says so.
 * @module ui/safety-view
 */

import { safetyWith } from '../safety.js';
import { avatar, h, replace, toast } from './dom.js';
import { confirmDialog } from './dialogs.js';

/** 60 digits as a grid of 12 groups (3 rows of 4 on a wide screen). */
export function safetyNumberView(formatted, { id, label }) {
  return h('div.safety-number', { id, role: 'group', 'aria-label': label, dataset: { number: formatted.replaceAll(' ', '') } },
    formatted.split(' ').map((group, i) => [i ? ' ' : null, h('span.safety-group', {}, group)]));
}

export class SafetyView {
  constructor(root, app, { username, navigate }) {
    Object.assign(this, { root, app, username, navigate });
    this.body = h('div.safety-body', { 'aria-live': 'polite' }, h('p.muted', {}, 'Loading…'));
    this.listener = (e) => e.detail.what === 'trust' && this.render();
    app.addEventListener('change', this.listener);
    const back = h('a.button.secondary.small', { href: '/security/', onclick: (e) => { e.preventDefault(); navigate('/security/'); } }, '← Security');
    const page = h('main.security.safety-page', { 'aria-labelledby': 'safety-title' },
      h('header.security-head', {}, back, h('h1', { id: 'safety-title', tabindex: -1 }, avatar(username), `Safety number with ${username}`)),
      h('section.panel', {}, this.body));
    replace(root, page);
    page.querySelector('h1').focus();
    this.render(true);
  }

  destroy() {
    this.app.removeEventListener('change', this.listener);
  }

  /** Re-render, keeping the focus on the control that had it (by id). */
  async render(force = false) {
    const focused = this.body.contains(document.activeElement) ? document.activeElement.id : null;
    await this.draw(force);
    if (focused) document.getElementById(focused)?.focus();
  }

  async draw(force) {
    let safety;
    try {
      safety = await safetyWith({ me: this.app.me, myIdKid: this.app.keys.idKid, directory: this.app.directory, trust: this.app.trust }, this.username, { force });
    } catch {
      replace(this.body, h('p.form-error', { role: 'alert' }, `Could not load ${this.username}’s identity.`));
      return;
    }
    const name = this.username;
    const uid = safety.user.id;
    if (safety.state === 'not_upgraded') {
      replace(this.body, h('div.callout.callout-warn', { role: 'note' },
        h('strong', {}, `${name} has not upgraded yet. `),
        `There is no safety number: ${name}’s devices are used with their own keys, as before. Once ${name} upgrades, a safety number appears here.`));
      return;
    }
    if (safety.state === 'changed') {
      const accept = h('button.danger', { type: 'button', id: 'accept-safety', onclick: async () => {
        if (!(await confirmDialog({ title: 'Accept new safety number?', message: `Accept only if ${name} told you they reset their account, or you compared the new number with them.`, confirm: 'Accept new safety number', danger: true }))) return;
        await this.app.trust.accept(uid);
        toast(`Accepted ${name}’s new safety number.`);
      } }, 'Accept new safety number');
      replace(this.body,
        h('div.callout.callout-danger', { role: 'alert' },
          h('strong', {}, `${name}’s safety number changed. `),
          safety.pending
            ? `Sending to ${name} is paused. Compare the new number below with ${name} before you accept it.`
            : `The server no longer lists a valid identity for ${name}. Nothing is sent to ${name}.`),
        safety.pending ? [
          h('h2', {}, 'New safety number'),
          safetyNumberView(safety.pending.formatted, { id: 'safety-number', label: `New safety number with ${name}` }),
          this.app.trust.canAccept(uid) ? h('div.row', {}, accept) : null,
        ] : null,
        safety.formatted ? h('details.previous-number', {}, h('summary', {}, 'The number you had accepted before'),
          safetyNumberView(safety.formatted, { id: 'previous-safety-number', label: `Previous safety number with ${name}` })) : null);
      return;
    }
    const verified = safety.verified;
    const toggle = h(`button.${verified ? 'secondary' : 'primary'}`, { type: 'button', id: 'verify-toggle', 'aria-label': `${verified ? 'Clear verification' : 'Mark as verified'}: ${name}`, onclick: async () => {
      await this.app.trust.setVerified(uid, !verified);
      toast(verified ? `${name} is no longer marked as verified.` : `${name} is marked as verified.`);
    } }, verified ? 'Clear verification' : 'Mark as verified');
    replace(this.body,
      h('p', {}, `Compare these 60 digits with the ones ${name} sees for you, in person or on a call you trust. They are the same on both sides. If they match, mark ${name} as verified.`),
      safetyNumberView(safety.formatted, { id: 'safety-number', label: `Safety number with ${name}` }),
      h('div.row.verify-row', {},
        verified ? h('span.tag.tag-ok', { id: 'verified-tag' }, '✓ Verified') : h('span.tag.tag-muted', {}, 'Not verified'),
        toggle),
      h('p.hint', {}, `The number changes only if you or ${name} get a new identity (a reset), never when a device is added or removed. A verified mark is kept on this device and handed to devices you link.`));
  }
}
