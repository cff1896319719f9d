/**
 * The chat WebSocket (PROTOCOL §5) of this device: connects, keeps alive with ping,
 * reconnects with exponential backoff and jitter, and reports its state. The browser's
 * `offline` event drops the connection at once (a socket can look open for a minute
 * after the network went away) and the state is `offline` while `navigator.onLine` is
 * false; the `online` event reconnects at once.
 * Events: `state` (detail {state, retryAt}; states idle, connecting, online, waiting,
 * offline, closed), `open`, `frame` (detail: the frame), `fatal` (detail: close code).
 * @module socket
 */

const PING_EVERY = 25000;
const SILENCE_LIMIT = 70000;
const MAX_BACKOFF = 30000;

export class ChatSocket extends EventTarget {
  constructor(deviceId) {
    super();
    this.deviceId = deviceId;
    this.ws = null;
    this.state = 'idle';
    this.attempt = 0;
    this.timer = null;
    this.pinger = null;
    this.lastFrame = 0;
    this.stopped = false;
    this.onOnline = () => (this.state === 'waiting' || this.state === 'offline') && this.connect();
    this.onOffline = () => this.networkDown();
  }

  get url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}/ws/chat/?device=${encodeURIComponent(this.deviceId)}`;
  }

  start() {
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    if (this.ws) this.ws.close(1000);
    this.setState('closed');
  }

  setState(state, retryAt = null) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, retryAt, attempt: this.attempt } }));
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    if (!this.retiring) this.setState('connecting');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (ws !== this.ws) return;
      if (this.retiring) {
        // An overlapping refresh: the old socket closes once this one is up.
        const old = this.retiring;
        setTimeout(() => {
          if (this.retiring === old) this.retiring = null;
          old.close(1000);
        }, 1500);
      }
      this.attempt = 0;
      this.lastFrame = Date.now();
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.keepAlive(), PING_EVERY);
      this.setState('online');
      this.dispatchEvent(new Event('open'));
    });
    ws.addEventListener('message', (event) => {
      if (ws !== this.ws && ws !== this.retiring) return;
      this.lastFrame = Date.now();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame === 'object' && frame.type !== 'pong') {
        this.dispatchEvent(new CustomEvent('frame', { detail: frame }));
      }
    });
    ws.addEventListener('close', (event) => {
      if (ws === this.retiring) this.retiring = null;
      if (ws !== this.ws) return;
      clearInterval(this.pinger);
      this.ws = null;
      if (this.stopped) return;
      if (event.code === 4401 || event.code === 4403) {
        this.setState('closed');
        this.dispatchEvent(new CustomEvent('fatal', { detail: event.code }));
        return;
      }
      this.retry();
    });
  }

  retry() {
    clearTimeout(this.timer);
    this.attempt += 1;
    const base = Math.min(MAX_BACKOFF, 500 * 2 ** Math.min(this.attempt - 1, 6));
    const delay = base / 2 + Math.random() * (base / 2);
    const retryAt = Date.now() + delay;
    this.setState(navigator.onLine === false ? 'offline' : 'waiting', retryAt);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** The browser says the network is gone: drop the connection now and wait for `online`. */
  networkDown() {
    if (this.stopped || !this.ws) {
      if (this.state === 'waiting') this.setState('offline', null);
      return;
    }
    const ws = this.ws;
    this.ws = null;
    clearInterval(this.pinger);
    ws.close(4000);
    this.retiring?.close(4000);
    this.retiring = null;
    this.retry();
  }

  /** Reconnect now (the user pressed "retry"). */
  retryNow() {
    if (this.state === 'waiting') this.connect();
  }

  keepAlive() {
    if (Date.now() - this.lastFrame > SILENCE_LIMIT && this.ws) {
      this.ws.close(4000);
      return;
    }
    this.send({ type: 'ping' });
  }

  /** Send a frame if connected; false if not (the caller keeps it for later). */
  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /**
   * Open a second connection and then close the first, so the server sends presence
   * for co-members afresh (it sends presence on connect only) without this user ever
   * appearing offline to others.
   */
  refresh() {
    if (this.state !== 'online' || !this.ws || this.retiring) return;
    this.retiring = this.ws;
    this.connect();
  }

  /** Drop the connection as if the network failed (tests and the "reconnect" button). */
  drop() {
    if (this.ws) this.ws.close(4000);
  }
}
