// Entry point: asks who is signed in (and shows the login form when the
// aggregator needs one to read), wires the WebSocket to the fleet state,
// routes between the fleet view (#/), a host view (#/host/ID), the alert
// history (#/alerts) and the silences (#/silences), keeps the alert bar
// and the connection indicator current, and redraws at most once per
// animation frame however many messages arrive.

import { FleetState } from './state.js';
import { Connection } from './conn.js';
import { FleetView } from './fleet.js';
import { HostView } from './host.js';
import { AlertBar } from './alerts.js';
import { fetchRules, fetchSilences, silenceAlert } from './alertapi.js';
import { HistoryView } from './history.js';
import { SilencesView } from './silences.js';
import { Staleness } from './stale.js';
import { Auth, NeedsLogin } from './auth.js';
import { LoginForm } from './loginform.js';
import { h, replace, setText } from './dom.js';
import { hostName } from './format.js';
import { subject } from './alertwords.js';

const state = new FleetState();
const viewRoot = document.getElementById('view');
const connEl = document.getElementById('conn');
const crumbs = document.getElementById('crumbs');
const notice = document.getElementById('notice');

const auth = new Auth();
let live = false;

const fleet = new FleetView(state);
const staleness = new Staleness(document.getElementById('stale'), state);
/** The view shown now other than the fleet: a HostView, HistoryView or SilencesView. */
let view = null;
let hostView = null;
let frame = 0;
let snapshots = 0;
let historyReload = 0;

const conn = new Connection({
  onState: (s) => {
    setText(connEl, s);
    connEl.className = `conn conn-${s}`;
    connEl.dataset.state = s;
    document.body.dataset.conn = s;
    staleness.onConnection(s);
    // The feed is refused when a session expires: ask again who we are.
    if (s === 'reconnecting' && auth.readRequiresLogin) recheckSession();
  },
  onMessage: (msg) => {
    switch (msg.type) {
      case 'snapshot':
        snapshots += 1;
        state.applySnapshot(msg);
        // After a reconnect: fill what the page missed from the API.
        if (snapshots > 1) {
          hostView?.load();
          fleet.refill();
          loadAlertContext();
        }
        break;
      case 'sample': state.applySample(msg); break;
      case 'detail': state.applyDetail(msg); break;
      case 'host_online': state.applyHostOnline(msg); break;
      case 'host_offline': state.applyHostOffline(msg); break;
      case 'alert':
        state.applyAlert(msg);
        // The history page reloads once the alerts have settled a moment.
        if (view instanceof HistoryView) {
          clearTimeout(historyReload);
          historyReload = setTimeout(() => { if (view instanceof HistoryView) view.load(); }, 1000);
        }
        break;
      case 'resync': break; // a snapshot follows
      case 'error': console.warn('server:', msg.message); break;
      default: break;
    }
  },
});

const alertBar = new AlertBar(document.getElementById('alerts'), state, {
  onSilence,
  silencing: () => {
    if (auth.isAdmin) return 'yes';
    return auth.me ? 'no' : 'login';
  },
});

state.addEventListener('sample', (ev) => hostView?.onSample(ev.detail));
state.addEventListener('detail', (ev) => hostView?.onDetail(ev.detail));
state.addEventListener('unknown-host', () => conn.send({ type: 'snapshot' }));
state.addEventListener('change', schedule);

function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  alertBar.render();
  staleness.render();
  if (view) view.update();
  else fleet.update();
}

/** Rules (for units and thresholds) and silences (to show them at once). */
async function loadAlertContext() {
  try {
    state.setRules(await fetchRules());
    state.setSilences(await fetchSilences());
  } catch { /* the aggregator is away or refuses: alerts show as it sends them */ }
}

async function onSilence(alert, button) {
  if (!auth.me) {
    showLogin('Silencing an alert needs an admin login.');
    return;
  }
  button.disabled = true;
  setText(button, 'Silencing…');
  try {
    const made = await silenceAlert(alert, state.metricOf(alert));
    // Shown at once: the alert moves to the silenced line on this frame.
    state.setSilences([...(state.silences ?? []).filter((s) => s.id !== made.id), made]);
    showNotice(`Silenced ${subject(alert, state.metricOf(alert))} on ${hostName(alert.host_id, state.hosts.get(alert.host_id)?.info)} for 1 hour.`);
  } catch (e) {
    if (e instanceof NeedsLogin) {
      await auth.load().catch(() => {});
      showLogin('Silencing needs an admin login; sign in again.');
    } else {
      showNotice(`Could not silence: ${e.message}`);
    }
  } finally {
    button.disabled = false;
    schedule();
  }
}

// --- Signing in and out ---

const login = new LoginForm(auth, { onSignedIn: () => { startLive(); schedule(); } });
const showLogin = (why) => login.show(why);

let rechecking = false;
async function recheckSession() {
  if (rechecking) return;
  rechecking = true;
  try {
    await auth.load();
    if (!auth.canRead) {
      conn.stop();
      live = false;
      showLogin('Your session has ended; sign in again.');
    }
  } catch { /* the aggregator is away; the connection keeps retrying */ }
  rechecking = false;
}

/** Starts the live feed once reading is allowed. */
function startLive() {
  if (live) return;
  live = true;
  conn.start();
  loadAlertContext();
}

function showNotice(text) {
  setText(notice, text);
  notice.hidden = false;
  clearTimeout(showNotice.timer);
  showNotice.timer = setTimeout(() => { notice.hidden = true; }, 8000);
}

function route() {
  const hash = location.hash;
  const m = /^#\/host\/([^?]+)(?:\?range=(\w+))?$/.exec(hash);
  view?.destroy?.();
  view = null;
  hostView = null;
  if (m) {
    const hostId = decodeURIComponent(m[1]);
    hostView = new HostView(state, hostId, {
      range: m[2],
      onRange: (r) => history.replaceState(null, '', `#/host/${encodeURIComponent(hostId)}?range=${r}`),
    });
    view = hostView;
    show(hostView.root, [hostId], `${hostId} · fleetwatch`);
    conn.subscribe([hostId]);
  } else if (hash === '#/alerts') {
    view = new HistoryView(state);
    show(view.root, ['Alert history'], 'Alert history · fleetwatch');
    conn.subscribe([]);
  } else if (hash === '#/silences') {
    view = new SilencesView(state, {
      canWrite: () => auth.isAdmin,
      askLogin: (why) => showLogin(why),
    });
    show(view.root, ['Silences'], 'Silences · fleetwatch');
    conn.subscribe([]);
  } else {
    show(fleet.root, [], 'fleetwatch');
    conn.subscribe([]);
  }
  render();
}

/** Puts a view on the page under "Fleet / ...". */
function show(root, trail, title) {
  replace(viewRoot, root);
  for (const a of document.querySelectorAll('nav.pages a')) {
    if (a.getAttribute('href') === location.hash) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  replace(crumbs, trail.length ? h('a', { href: '#/', text: 'Fleet' }) : h('span', { text: 'Fleet' }),
    trail.map((t) => [h('span', { text: ' / ' }), h('span', { text: t })]));
  document.title = title;
}

// The host view waits for the snapshot to know the host; load it then.
state.addEventListener('snapshot', () => {
  if (hostView && !hostView.charts.length) hostView.load();
});

window.addEventListener('hashchange', route);
// Ages ("12 s ago") move even when nothing arrives; silences expire.
setInterval(() => {
  schedule();
  // Online hosts send a sample every interval: a feed quiet for three of
  // them (10 s at least) is dead however open its socket looks.
  const intervals = [...state.hosts.values()].filter((x) => x.online).map((x) => x.info.interval_ms ?? 5000);
  if (intervals.length) conn.restartIfQuiet(Math.max(10000, 3 * Math.max(...intervals)));
}, 1000);
setInterval(() => { if (live && conn.state === 'live') fetchSilences().then((s) => state.setSilences(s), () => {}); }, 30000);
auth.addEventListener('change', () => { login.renderWho(); schedule(); });
route();
auth.load().catch(() => {}).then(() => {
  if (auth.canRead) startLive();
  else showLogin('');
});
// For tests and the curious: the live state, read-only by convention.
window.fleetwatch = { state, conn, auth, fleet, get hostView() { return hostView; } };
