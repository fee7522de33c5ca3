// Entry point: asks who is signed in (and shows the login form when the
// aggregator needs one to read), wires the WebSocket to the fleet state,
// routes between the fleet view (#/) and a host view (#/host/ID), and
// redraws at most once per animation frame however many messages arrive.

import { FleetState } from './state.js';
import { Connection } from './conn.js';
import { FleetView } from './fleet.js';
import { HostView } from './host.js';
import { renderAlerts, silence } from './alerts.js';
import { Auth, NeedsLogin } from './auth.js';
import { h, replace, setText } from './dom.js';

const state = new FleetState();
const viewRoot = document.getElementById('view');
const alertsRoot = document.getElementById('alerts');
const connEl = document.getElementById('conn');
const crumbs = document.getElementById('crumbs');
const notice = document.getElementById('notice');
const whoRoot = document.getElementById('who');
const loginRoot = document.getElementById('login');
const loginForm = document.getElementById('login-form');
const loginError = document.getElementById('login-error');

const auth = new Auth();
let live = false;

const fleet = new FleetView(state);
let hostView = null;
let frame = 0;
let snapshots = 0;

const conn = new Connection({
  onState: (s) => {
    setText(connEl, s);
    connEl.className = `conn conn-${s}`;
    connEl.dataset.state = s;
    document.body.dataset.conn = s;
    // The feed is refused when a session expires: ask again who we are.
    if (s === 'reconnecting' && auth.readRequiresLogin) recheckSession();
  },
  onMessage: (msg) => {
    switch (msg.type) {
      case 'snapshot':
        snapshots += 1;
        state.applySnapshot(msg);
        // After a reconnect the host sent samples we never saw: reload.
        if (snapshots > 1 && hostView) hostView.load();
        break;
      case 'sample': state.applySample(msg); break;
      case 'detail': state.applyDetail(msg); break;
      case 'host_online': state.applyHostOnline(msg); break;
      case 'host_offline': state.applyHostOffline(msg); break;
      case 'alert': state.applyAlert(msg); break;
      case 'resync': break; // a snapshot follows
      case 'error': console.warn('server:', msg.message); break;
      default: break;
    }
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
  renderAlerts(alertsRoot, state, { onSilence, silencing: silencing() });
  if (hostView) hostView.update();
  else fleet.update();
}

/** What the Silence buttons do for whoever is signed in (see renderAlerts). */
function silencing() {
  if (auth.isAdmin) return 'yes';
  return auth.me ? 'no' : 'login';
}

async function onSilence(alert, button) {
  if (!auth.me) {
    showLogin('Silencing an alert needs an admin login.');
    return;
  }
  button.disabled = true;
  try {
    await silence(alert);
    setText(button, 'Silenced');
    showNotice(`Silenced ${alert.rule} on ${alert.host_id} for 1 hour.`);
  } catch (e) {
    button.disabled = false;
    if (e instanceof NeedsLogin) {
      await auth.load().catch(() => {});
      showLogin('Your session has ended; sign in again to silence.');
    } else {
      showNotice(`Could not silence: ${e.message}`);
    }
  }
}

// --- Signing in and out ---

function renderWho() {
  if (auth.me) {
    replace(whoRoot,
      h('span', { class: 'who-name', text: `${auth.me.user} · ${auth.me.role}` }),
      h('button', { type: 'button', class: 'who-button', id: 'sign-out', text: 'Sign out', on: { click: signOut } }));
  } else if (auth.loaded && !loginRoot.hidden) {
    replace(whoRoot);
  } else if (auth.loaded) {
    replace(whoRoot, h('button', { type: 'button', class: 'who-button', id: 'sign-in', text: 'Sign in', on: { click: () => showLogin('') } }));
  }
}

/** Shows the login form; `why` says what it is for. */
function showLogin(why) {
  const required = !auth.canRead;
  setText(document.getElementById('login-why'),
    why || (required ? 'This aggregator needs a login to show its fleet.' : 'Sign in to change things, such as silencing alerts.'));
  document.getElementById('login-cancel').hidden = required;
  loginError.hidden = true;
  loginRoot.hidden = false;
  document.body.dataset.auth = required ? 'required' : 'optional';
  renderWho();
  document.getElementById('login-user').focus();
}

function hideLogin() {
  loginRoot.hidden = true;
  delete document.body.dataset.auth;
  document.getElementById('login-password').value = '';
  renderWho();
}

loginForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const submit = document.getElementById('login-submit');
  submit.disabled = true;
  loginError.hidden = true;
  try {
    await auth.login(document.getElementById('login-user').value, document.getElementById('login-password').value);
    hideLogin();
    startLive();
    schedule();
  } catch (e) {
    setText(loginError, e.message);
    loginError.hidden = false;
  } finally {
    submit.disabled = false;
  }
});
document.getElementById('login-cancel').addEventListener('click', hideLogin);

async function signOut() {
  try {
    await auth.logout();
  } finally {
    // A clean page: nothing of the signed-in view stays behind.
    location.reload();
  }
}

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
}

function showNotice(text) {
  setText(notice, text);
  notice.hidden = false;
  clearTimeout(showNotice.timer);
  showNotice.timer = setTimeout(() => { notice.hidden = true; }, 8000);
}

function route() {
  const m = /^#\/host\/([^?]+)(?:\?range=(\w+))?$/.exec(location.hash);
  hostView?.destroy();
  hostView = null;
  if (m) {
    const hostId = decodeURIComponent(m[1]);
    hostView = new HostView(state, hostId, {
      range: m[2],
      onRange: (r) => history.replaceState(null, '', `#/host/${encodeURIComponent(hostId)}?range=${r}`),
    });
    replace(viewRoot, hostView.root);
    replace(crumbs, h('a', { href: '#/', text: 'Fleet' }), h('span', { text: ' / ' }), h('span', { text: hostId }));
    document.title = `${hostId} · fleetwatch`;
    conn.subscribe([hostId]);
  } else {
    replace(viewRoot, fleet.root);
    replace(crumbs, h('span', { text: 'Fleet' }));
    document.title = 'fleetwatch';
    conn.subscribe([]);
  }
  render();
}

// The host view waits for the snapshot to know the host; load it then.
state.addEventListener('snapshot', () => {
  if (hostView && !hostView.charts.length) hostView.load();
});

window.addEventListener('hashchange', route);
// Ages ("12s ago") move even when nothing arrives.
setInterval(schedule, 5000);
auth.addEventListener('change', () => { renderWho(); schedule(); });
route();
auth.load().catch(() => {}).then(() => {
  if (auth.canRead) startLive();
  else showLogin('');
});
// For tests and the curious: the live state, read-only by convention.
window.fleetwatch = { state, conn, auth, get hostView() { return hostView; } };
