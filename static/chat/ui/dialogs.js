/**
 * Modal dialogs (native <dialog>): a confirm box, a user picker, the new-group form
 * and the members panel of a group.
 * @module ui/dialogs
 */

import { api } from '../api.js';
import { avatar, h, replace, toast } from './dom.js';
import { icon } from './icons.js';

let modalCount = 0;

/** A native modal <dialog> with a titled header and a Close button; removed once closed. */
export function modal(title, ...body) {
  const titleId = `modal-title-${++modalCount}`;
  const dialog = h('dialog.modal', { 'aria-labelledby': titleId },
    h('header.modal-head', {}, h('h2', { id: titleId }, title),
      h('button.icon-button', { type: 'button', 'aria-label': 'Close', onclick: () => dialog.close() }, icon('close'))),
    ...body);
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** Resolves true when the user confirms. */
export function confirmDialog({ title, message, confirm = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    let answer = false;
    const ok = h(`button.${danger ? 'danger' : 'primary'}`, { type: 'button', onclick: () => { answer = true; dialog.close(); } }, confirm);
    const dialog = modal(title, h('p', {}, message), h('div.modal-actions', {}, h('button.secondary', { type: 'button', onclick: () => dialog.close() }, 'Cancel'), ok));
    dialog.addEventListener('close', () => resolve(answer));
    ok.focus();
  });
}

/** A username search box; calls onPick(username) for a chosen result. */
export function userPicker({ exclude = [], onPick, label = 'Search people', id = 'user-search' }) {
  const input = h('input', { id, type: 'search', autocomplete: 'off', placeholder: 'Username', 'aria-controls': `${id}-results` });
  const results = h('ul.pick-list', { id: `${id}-results`, 'aria-label': 'Matching people' });
  let timer = null;
  let seq = 0;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      const mine = ++seq;
      if (!q) return replace(results);
      const { users } = await api.searchUsers(q);
      if (mine !== seq) return undefined;
      const shown = users.filter((u) => !exclude.includes(u.username));
      replace(results, shown.length ? shown.map((u) => h('li', {}, h('button.pick', { type: 'button', onclick: () => onPick(u.username) }, avatar(u.username), h('span', {}, u.username)))) : h('li.muted', {}, 'No one found'));
      return undefined;
    }, 150);
  });
  return { el: h('div.picker', {}, h('label', { for: id }, label), input, results), input };
}

/** New direct chat: pick one person. Resolves the username or null. */
export function newChatDialog({ me }) {
  return new Promise((resolve) => {
    let picked = null;
    const picker = userPicker({ exclude: [me.username], id: 'new-chat-search', onPick: (name) => { picked = name; dialog.close(); } });
    const dialog = modal('New chat', picker.el);
    dialog.addEventListener('close', () => resolve(picked));
    picker.input.focus();
  });
}

/** New group: a title and members. Resolves {title, members} or null. */
export function newGroupDialog({ me }) {
  return new Promise((resolve) => {
    const chosen = [];
    let result = null;
    const title = h('input', { id: 'group-title', maxlength: 100, placeholder: 'e.g. Book club' });
    const chips = h('ul.chips', { 'aria-label': 'Members' });
    const errors = h('div.form-error', { role: 'alert', hidden: true });
    const renderChips = () => replace(chips, chosen.map((name) => h('li.chip', {}, name, h('button.chip-remove', { type: 'button', 'aria-label': `Remove ${name}`, onclick: () => { chosen.splice(chosen.indexOf(name), 1); renderChips(); } }, icon('close', 'icon-inline')))));
    const picker = userPicker({
      exclude: [me.username],
      id: 'group-search',
      label: 'Add members',
      onPick: (name) => {
        if (!chosen.includes(name)) chosen.push(name);
        renderChips();
        picker.input.value = '';
        picker.input.dispatchEvent(new Event('input'));
        picker.input.focus();
      },
    });
    const create = h('button.primary', { type: 'submit' }, 'Create group');
    const form = h('form.stack', { novalidate: true }, h('label', { for: 'group-title' }, 'Group name'), title, picker.el, chips, errors,
      h('div.modal-actions', {}, h('button.secondary', { type: 'button', onclick: () => dialog.close() }, 'Cancel'), create));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!chosen.length) {
        errors.hidden = false;
        errors.textContent = 'Add at least one member.';
        return;
      }
      result = { title: title.value.trim(), members: [...chosen] };
      dialog.close();
    });
    const dialog = modal('New group', form);
    dialog.addEventListener('close', () => resolve(result));
    title.focus();
  });
}

/** Members of a group: list, add (owner), remove (owner), leave. */
export function membersDialog({ app, conv }) {
  const list = h('ul.member-list', { 'aria-label': 'Members' });
  const isOwner = conv.owner?.id === app.me.id;
  const render = () => {
    replace(list, conv.members.map((m) => h('li.member', {},
      avatar(m.username, app.online.has(m.username) ? 'online' : ''),
      h('span.member-name', {}, m.username, m.id === app.me.id ? ' (you)' : '', conv.owner?.id === m.id ? ' · owner' : ''),
      isOwner && m.id !== app.me.id && !conv.left && h('button.secondary.small', {
        type: 'button',
        'aria-label': `Remove ${m.username}`,
        onclick: async () => {
          if (!(await confirmDialog({ title: 'Remove member', message: `Remove ${m.username} from this group? They keep what they could already read.`, confirm: 'Remove', danger: true }))) return;
          try {
            await app.removeMember(conv, m.username);
            render();
          } catch (error) {
            toast(error.detail ?? error.message, 'error');
          }
        },
      }, 'Remove'))));
  };
  render();
  const picker = isOwner && !conv.left ? userPicker({
    id: 'member-search',
    label: 'Add a member',
    exclude: conv.members.map((m) => m.username),
    onPick: async (name) => {
      try {
        await app.addMember(conv, name);
        picker.input.value = '';
        picker.input.dispatchEvent(new Event('input'));
        render();
      } catch (error) {
        toast(error.detail ?? error.message, 'error');
      }
    },
  }) : null;
  const leave = !conv.left && h('button.danger', {
    type: 'button',
    onclick: async () => {
      if (!(await confirmDialog({ title: 'Leave group', message: 'Leave this group? You keep the history you could read but get no new messages.', confirm: 'Leave', danger: true }))) return;
      try {
        await app.removeMember(conv, app.me.username);
        dialog.close();
      } catch (error) {
        toast(error.detail ?? error.message, 'error');
      }
    },
  }, 'Leave group');
  const dialog = modal(app.titleOf(conv), list, picker?.el, h('div.modal-actions', {}, leave));
  return dialog;
}
