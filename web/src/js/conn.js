// The WebSocket connection: connects, reconnects with jittered exponential
// backoff, re-sends the subscription after every reconnect, and reports its
// state ("connecting", "live", "reconnecting", "offline").
//
// The backoff is short on purpose (at most 1 s between tries): the page is
// live again within about a second of the aggregator's return, and one
// small request a second from each open dashboard is nothing to a server.

const BACKOFF_MIN_MS = 200;
const BACKOFF_MAX_MS = 1000;
/** Failed attempts after which the page says "offline" (it keeps trying). */
const OFFLINE_AFTER = 30;

export class Connection {
  constructor({ onMessage, onState }) {
    this.onMessage = onMessage;
    this.onState = onState;
    this.subscription = [];
    this.failures = 0;
    this.socket = null;
    this.timer = null;
    this.state = 'connecting';
    window.addEventListener('online', () => this.retryNow());
  }

  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/ws`;
  }

  start() {
    this.stopped = false;
    this.failures = 0;
    this.connect();
  }

  /** Closes the socket and stops reconnecting (until `start`). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    socket?.close();
    this.setState('offline');
  }

  setState(state) {
    if (this.state !== state) {
      this.state = state;
      this.onState(state);
    }
  }

  connect() {
    clearTimeout(this.timer);
    let socket;
    try {
      socket = new WebSocket(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    let gotSnapshot = false;
    socket.addEventListener('open', () => this.sendSubscription());
    socket.addEventListener('message', (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.lastMessageAt = Date.now();
      if (msg.type === 'snapshot' && !gotSnapshot) {
        gotSnapshot = true;
        this.failures = 0;
        this.setState('live');
      }
      this.onMessage(msg);
    });
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.failures += 1;
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    this.setState(this.failures >= OFFLINE_AFTER || !navigator.onLine ? 'offline' : 'reconnecting');
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, this.failures - 1));
    const delay = base / 2 + Math.random() * (base / 2);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /**
   * A feed that went quiet although samples are due (a half-open TCP
   * connection says nothing): drop it and connect again.
   */
  restartIfQuiet(maxQuietMs) {
    if (this.state !== 'live' || !this.socket) return;
    if (Date.now() - (this.lastMessageAt ?? Date.now()) <= maxQuietMs) return;
    const socket = this.socket;
    this.socket = null;
    socket.close();
    this.failures += 1;
    this.scheduleReconnect();
  }

  retryNow() {
    if (!this.socket && !this.stopped) {
      this.failures = 0;
      this.connect();
    }
  }

  /** Full detail for these hosts, summaries for the rest. */
  subscribe(hosts) {
    this.subscription = [...hosts];
    this.sendSubscription();
  }

  sendSubscription() {
    this.send({ type: 'subscribe', hosts: this.subscription });
  }

  send(msg) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(msg));
  }
}
