/**
 * Modal dialogs (native <dialog>): a confirm box, a user picker, the new-group form
 * and the members panel of a group.
 * @module ui/dialogs
 */

import { findPeople, peopleNote } from './people-search.js';
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

/** A username search box; calls onPick({id, username}) for a chosen result. */
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
      let users = [];
      try {
        users = await findPeople(q);
      } catch {
        return undefined;
      }
      if (mine !== seq) return undefined;
      const excluded = typeof exclude === 'function' ? exclude() : exclude;
      const shown = users?.filter((u) => !excluded.includes(u.username)) ?? [];
      replace(results, shown.length ? shown.map((u) => h('li', {}, h('button.pick', { type: 'button', onclick: () => onPick({ id: u.id, username: u.username }) }, avatar(u.username), h('span', {}, u.username)))) : peopleNote(users && shown));
      return undefined;
    }, 150);
  });
  return { el: h('div.picker', {}, h('label', { for: id }, label), input, results), input };
}

/** New direct chat: pick one person. Resolves the username or null. */
export function newChatDialog({ me }) {
  return new Promise((resolve) => {
    let picked = null;
    const picker = userPicker({ exclude: [me.username], id: 'new-chat-search', onPick: (user) => { picked = user.username; dialog.close(); } });
    const dialog = modal('New chat', picker.el);
    dialog.addEventListener('close', () => resolve(picked));
    picker.input.focus();
  });
}

/** New group: a title and members. Resolves {title, users: [{id, username}]} or null. */
export function newGroupDialog({ me }) {
  return new Promise((resolve) => {
    const chosen = [];
    let result = null;
    const title = h('input', { id: 'group-title', maxlength: 200, placeholder: 'e.g. Book club' });
    const chips = h('ul.chips', { 'aria-label': 'Members' });
    const errors = h('div.form-error', { role: 'alert', hidden: true });
    const renderChips = () => {
      replace(chips, chosen.map((user) => h('li.chip', {}, user.username, h('button.chip-remove', { type: 'button', 'aria-label': `Remove ${user.username}`, onclick: () => { chosen.splice(chosen.indexOf(user), 1); renderChips(); } }, icon('close', 'icon-inline')))));
      if (chosen.length) errors.hidden = true;
    };
    const picker = userPicker({
      exclude: () => [me.username, ...chosen.map((u) => u.username)],
      id: 'group-search',
      label: 'Add members',
      onPick: (user) => {
        if (!chosen.some((u) => u.id === user.id)) chosen.push(user);
        renderChips();
        picker.input.value = '';
        picker.input.dispatchEvent(new Event('input'));
        picker.input.focus();
      },
    });
    const create = h('button.primary', { type: 'submit' }, 'Create group');
    const form = h('form.stack', { novalidate: true }, h('label', { for: 'group-title' }, 'Group name'), title, picker.el, chips, errors,
      h('p.hint', {}, 'The member list is signed by this device; everyone’s app checks each change to it.'),
      h('div.modal-actions', {}, h('button.secondary', { type: 'button', onclick: () => dialog.close() }, 'Cancel'), create));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!chosen.length) {
        errors.hidden = false;
        errors.textContent = 'Add at least one member.';
        return;
      }
      result = { title: title.value.trim(), users: [...chosen] };
      dialog.close();
    });
    const dialog = modal('New group', form);
    dialog.addEventListener('close', () => resolve(result));
    title.focus();
  });
}

/**
 * A group's members as its verified roster says: list, add and remove (the owner),
 * rename and leave (any member). Each change is a record signed by this device; a
 * refusal is shown in the dialog.
 */
export function membersDialog({ app, conv }) {
  const list = h('ul.member-list', { 'aria-label': 'Members' });
  const status = h('p.form-error', { role: 'alert', hidden: true });
  const titleInput = h('input', { id: 'group-rename', maxlength: 200, value: app.titleOf(conv) });
  let busy = false;
  const act = async (work) => {
    if (busy) return false;
    busy = true;
    status.hidden = true;
    try {
      await work();
      return true;
    } catch (error) {
      status.hidden = false;
      status.textContent = error.message;
      return false;
    } finally {
      busy = false;
      render();
    }
  };
  const isOwner = () => app.ownerOf(conv) === app.me.id;
  const mayChange = () => !conv.left && !app.rosters.tampered(conv.id);
  const render = () => {
    const owner = app.ownerOf(conv);
    replace(list, app.membersOf(conv).map((m) => h('li.member', {},
      avatar(m.username, app.online.has(m.username) ? 'online' : ''),
      h('span.member-name', {}, m.username, m.id === app.me.id ? ' (you)' : '', owner === m.id ? ' · owner' : ''),
      isOwner() && mayChange() && m.id !== app.me.id && h('button.secondary.small', {
        type: 'button',
        'aria-label': `Remove ${m.username}`,
        onclick: async () => {
          if (!(await confirmDialog({ title: 'Remove member', message: `Remove ${m.username} from this group? They keep what they could already read.`, confirm: 'Remove', danger: true }))) return;
          await act(() => app.removeMember(conv, m.id));
        },
      }, 'Remove'))));
    if (picker) picker.el.hidden = !(isOwner() && mayChange());
    renameForm.hidden = !mayChange();
    if (leave) leave.hidden = !mayChange();
  };
  const picker = userPicker({
    id: 'member-search',
    label: 'Add a member',
    exclude: () => app.membersOf(conv).map((m) => m.username),
    onPick: async (user) => {
      if (await act(() => app.addMember(conv, user))) {
        picker.input.value = '';
        picker.input.dispatchEvent(new Event('input'));
      }
    },
  });
  const renameForm = h('form.rename', { 'aria-label': 'Rename the group' },
    h('label', { for: 'group-rename' }, 'Group name'),
    h('div.row', {}, titleInput, h('button.secondary.small', { type: 'submit' }, 'Rename')));
  renameForm.addEventListener('submit', (event) => {
    event.preventDefault();
    act(() => app.retitle(conv, titleInput.value));
  });
  const leave = h('button.danger', {
    type: 'button',
    onclick: async () => {
      if (!(await confirmDialog({ title: 'Leave group', message: 'Leave this group? You keep the history you could read but get no new messages.', confirm: 'Leave', danger: true }))) return;
      if (await act(() => app.leave(conv))) dialog.close();
    },
  }, 'Leave group');
  const onChange = (event) => {
    if (event.detail.id === conv.id && (event.detail.what === 'conversation' || event.detail.what === 'notices')) render();
  };
  app.addEventListener('change', onChange);
  render();
  const dialog = modal(app.titleOf(conv), list, picker.el, renameForm, status,
    h('p.hint', {}, 'Each change is signed by the device that makes it, and every member’s app checks it.'),
    h('div.modal-actions', {}, leave));
  dialog.addEventListener('close', () => app.removeEventListener('change', onChange));
  return dialog;
}
