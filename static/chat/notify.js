/**
 * Opt-in desktop notifications while the tab is hidden. They name the sender only,
 * never the text. The opt-in is a preference kept in IndexedDB.
 * @module notify
 */

import { getItem, setItem } from './store.js';

export class Notifier {
  constructor(userId) {
    this.key = `notify:${userId}`;
    this.enabled = false;
  }

  get supported() {
    return 'Notification' in window;
  }

  async load() {
    this.enabled = Boolean(await getItem(this.key)) && this.supported && Notification.permission === 'granted';
    return this;
  }

  /** Ask for permission (must run from a user gesture); resolves whether enabled. */
  async enable() {
    if (!this.supported) return false;
    const permission = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
    this.enabled = permission === 'granted';
    await setItem(this.key, this.enabled);
    return this.enabled;
  }

  async disable() {
    this.enabled = false;
    await setItem(this.key, false);
  }

  /** Notify "New message from <sender>" when enabled and the tab is hidden. */
  message(sender, onClick) {
    if (!this.enabled || document.visibilityState !== 'hidden') return;
    const note = new Notification(`New message from ${sender}`, { tag: `chat-${sender}` });
    note.onclick = () => {
      window.focus();
      onClick?.();
      note.close();
    };
  }
}
