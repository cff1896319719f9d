/**
 * The identity side of a running app on an existing device: incoming link requests
 * (a dialog at once, with the code computed from the request's kids and this device's
 * identity, Approve / Deny; requests not decided yet stay in the tray), and the history
 * transfer after an approval (a progress bar with Cancel, Resume, Dismiss), in a small
 * tray that stays on screen while the app is used.
 * @module ui/identity-tray
 */

import { LinkInbox } from '../link.js';
import { HistoryTransfer } from '../transfer.js';
import { h, replace, toast } from './dom.js';
import { confirmDialog, modal } from './dialogs.js';
import { linkCodeView } from './link-code.js';

const number = (n) => Number(n ?? 0).toLocaleString('en');

/**
 * Start the link inbox and the history transfer for `app` (after `app.start()`), with
 * their tray. Resolves `{inbox, transfer, tray}`.
 */
export async function startIdentity(app, { me, deviceId, keys }) {
  const inbox = new LinkInbox({ me, deviceId, keys, trust: app.trust, socket: app.socket });
  const transfer = await new HistoryTransfer({
    deviceId,
    keys,
    conversations: () => app.list().filter((c) => !c.left).map((c) => ({ id: c.id, last_seq: c.last_seq })),
  }).load();
  if (transfer.job?.state === 'done') await transfer.dismiss(); // told last time
  const tray = new IdentityTray({ inbox, transfer, trust: app.trust, me });
  inbox.start().catch(() => {});
  transfer.resumeIfInterrupted();
  return { inbox, transfer, tray };
}

export class IdentityTray {
  constructor({ inbox, transfer, trust = null, me = null }) {
    Object.assign(this, { inbox, transfer, trust, me });
    this.open = null; // request id of the dialog on screen
    this.dismissed = new Set();
    this.alertsEl = h('div.tray-alerts');
    this.requestsEl = h('div.tray-requests');
    this.transferEl = h('div.tray-transfer');
    this.announcer = h('p.visually-hidden', { role: 'status', 'aria-live': 'polite' });
    this.el = h('aside.identity-tray', { 'aria-label': 'Devices and history' }, this.alertsEl, this.requestsEl, this.transferEl, this.announcer);
    document.body.append(this.el);
    inbox.addEventListener('change', () => this.onRequests());
    transfer.addEventListener('change', (e) => this.renderTransfer(e.detail));
    trust?.addEventListener('change', () => this.renderAlerts());
    this.renderAlerts();
    this.renderTransfer({ job: transfer.job, done: transfer.done });
  }

  /**
   * A device on my own account that my identity did not certify: a compact red card on
   * every screen with "Revoke it" (PROTOCOL §7.4), until it is revoked or linked. (An
   * open conversation shows the full notice; the card then steps back, see identity.css.)
   */
  renderAlerts() {
    if (!this.trust || !this.me) return;
    const own = this.trust.noticesFor([this.me.username]).filter((n) => n.kind === 'own_uncertified_device');
    const signature = JSON.stringify(own.map((n) => n.deviceId));
    if (this.alertsEl.dataset.signature === signature) return;
    this.alertsEl.dataset.signature = signature;
    replace(this.alertsEl, own.map((notice) => {
      const revoke = notice.actions.find((a) => a.run);
      const button = revoke && h('button.danger.small', {
        type: 'button',
        onclick: async () => {
          if (!(await confirmDialog({ title: revoke.label, message: revoke.confirm, confirm: revoke.label, danger: true }))) return;
          button.disabled = true;
          try {
            await revoke.run();
          } catch (error) {
            toast(error?.detail ?? error?.message ?? 'Revoking failed.', 'error');
          } finally {
            button.disabled = false;
          }
        },
      }, revoke.label);
      return h('div.tray-card.callout-danger.trust-alert.tray-alert', { role: 'alert', dataset: { kind: notice.kind, deviceId: notice.deviceId } },
        h('p', {}, h('strong', {}, 'A device on your account was not added by you. '), 'Sending is paused.'),
        h('div.row', {}, button, h('a.button.secondary.small', { href: '/security/' }, 'Details')));
    }));
  }

  onRequests() {
    if (this.open !== null && !this.inbox.get(this.open)) this.dialog?.close();
    const next = this.inbox.pending().find((entry) => !this.dismissed.has(entry.request.id));
    if (next && this.open === null && !document.querySelector('dialog[open]')) this.showDialog(next);
    this.renderRequests();
  }

  renderRequests() {
    const waiting = this.inbox.pending().filter((entry) => entry.request.id !== this.open);
    replace(this.requestsEl, waiting.map((entry) => h('div.tray-card.tray-request', { dataset: { requestId: entry.request.id } },
      h('p', {}, '“', entry.request.name, '” asks to join your account.'),
      h('button.primary.small', { type: 'button', 'aria-label': `Review the request of “${entry.request.name}”`, onclick: () => this.showDialog(entry) }, 'Review request'))));
  }

  /** The approval dialog of one request. */
  showDialog(entry) {
    const { request, code, valid } = entry;
    this.open = request.id;
    this.dismissed.add(request.id);
    const errors = h('div.form-error', { role: 'alert', hidden: true });
    const approve = h('button.primary', { type: 'button', disabled: !valid }, 'Approve');
    const deny = h('button.secondary', { type: 'button' }, 'Deny');
    const created = request.created ? new Date(request.created).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : null;
    const dialog = modal('Link a new device?',
      h('p', {}, '“', request.name, '” asks to join your account', created ? ` (requested at ${created})` : '', '.'),
      valid
        ? [
          h('p', {}, 'Approve only if the new device shows exactly this code:'),
          linkCodeView(code, { id: 'approve-code' }),
          h('div.callout.callout-warn', { role: 'note' },
            'Approving gives that device your identity key and the list of people you trust, and copies your message history to it. If you did not just ask for this, deny it.'),
        ]
        : h('div.callout.callout-danger', { role: 'alert' }, 'This request failed its key checks. It cannot be approved; deny it.'),
      errors,
      h('div.modal-actions', {}, deny, approve));
    dialog.classList.add('link-dialog');
    this.dialog = dialog;
    const busy = (on) => {
      approve.disabled = on || !valid;
      deny.disabled = on;
    };
    approve.addEventListener('click', async () => {
      busy(true);
      approve.textContent = 'Approving…';
      try {
        const { target } = await this.inbox.approve(request.id);
        dialog.close();
        toast(`Linked “${target.name}”. Copying your history to it…`);
        this.transfer.start(target);
      } catch (error) {
        busy(false);
        approve.textContent = 'Approve';
        errors.textContent = error?.detail || error?.message || 'Approving failed.';
        errors.hidden = false;
      }
    });
    deny.addEventListener('click', async () => {
      busy(true);
      try {
        await this.inbox.deny(request.id);
        dialog.close();
        toast(`Denied “${request.name}”.`);
      } catch (error) {
        busy(false);
        errors.textContent = error?.detail || 'Denying failed.';
        errors.hidden = false;
      }
    });
    dialog.addEventListener('close', () => {
      this.open = null;
      this.dialog = null;
      this.renderRequests();
    });
    (valid ? approve : deny).focus();
    this.renderRequests();
  }

  /**
   * The transfer card: progress while running; Resume / Dismiss when stopped. Built once
   * per state (the focus stays on its buttons); progress updates change only the numbers.
   */
  renderTransfer({ job, done }) {
    if (!job) {
      replace(this.transferEl);
      this.card = null;
      this.lastState = null;
      return;
    }
    const total = Math.max(job.total ?? 0, done ?? 0, 1);
    const name = job.target?.name ?? 'the new device';
    const state = job.state;
    if (state !== this.lastState || !this.card) {
      this.lastState = state;
      this.announcer.textContent = {
        running: `Copying your history to ${name}.`,
        cancelled: 'History copy stopped.',
        failed: 'History copy stopped by an error.',
        done: `History copied to ${name}.`,
      }[state] ?? '';
      const title = {
        running: ['Copying history to “', name, '”'],
        done: ['History copied to “', name, '”'],
      }[state] ?? ['History copy to “', name, '” stopped'];
      const button = (label, run, kind = 'secondary') => h(`button.${kind}.small`, { type: 'button', onclick: run }, label);
      const buttons = {
        running: [button('Cancel', () => this.transfer.cancel())],
        done: [button('Close', () => this.transfer.dismiss())],
      }[state] ?? [button('Resume', () => this.transfer.resume(), 'primary'), button('Dismiss', () => this.transfer.dismiss())];
      this.progress = h('progress', { id: 'transfer-progress', max: total, value: 0, 'aria-label': 'History copied' });
      this.count = h('p.transfer-count');
      this.card = h('section.tray-card.transfer-card', { 'aria-labelledby': 'transfer-title', dataset: { transferState: state } },
        h('h2', { id: 'transfer-title' }, ...title),
        this.progress,
        job.error ? h('p.form-error', {}, job.error) : null,
        h('div.transfer-foot', {}, this.count, h('div.row', {}, buttons)));
      replace(this.transferEl, this.card);
    }
    const value = state === 'done' ? total : Math.min(done ?? 0, total);
    this.progress.max = total;
    this.progress.value = value;
    this.card.dataset.done = String(value);
    this.count.textContent = state === 'done'
      ? `${number(job.wrapped)} messages can now be read there.`
      : `${number(value)} of ${number(total)} messages`;
  }
}
