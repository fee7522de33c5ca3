// Entry point: wires the WebSocket to the fleet state, routes between the
// fleet view (#/) and a host view (#/host/ID), and redraws at most once per
// animation frame however many messages arrive.

import { FleetState } from './state.js';
import { Connection } from './conn.js';
import { FleetView } from './fleet.js';
import { HostView } from './host.js';
import { renderAlerts, silence } from './alerts.js';
import { h, replace, setText } from './dom.js';

const state = new FleetState();
const viewRoot = document.getElementById('view');
const alertsRoot = document.getElementById('alerts');
const connEl = document.getElementById('conn');
const crumbs = document.getElementById('crumbs');
const notice = document.getElementById('notice');

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
state.addEventListener('unknown-host', () => conn.send({ type: 'snapshot' }));
state.addEventListener('change', schedule);

function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  renderAlerts(alertsRoot, state, { onSilence });
  if (hostView) hostView.update();
  else fleet.update();
}

async function onSilence(alert, button) {
  button.disabled = true;
  try {
    await silence(alert);
    setText(button, 'Silenced');
    showNotice(`Silenced ${alert.rule} on ${alert.host_id} for 1 hour.`);
  } catch (e) {
    button.disabled = false;
    showNotice(`Could not silence: ${e.message}`);
  }
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
route();
conn.start();
// For tests and the curious: the live state, read-only by convention.
window.fleetwatch = { state, conn, get hostView() { return hostView; } };
