// The Alerts page (#/alerts): the alert history the aggregator stored
// (GET /api/alerts?state=all), firing and resolved, each with its start,
// end, duration and peak in the metric's unit; filtered by state,
// severity, host and rule. Pending alerts that never fired are not stored,
// so they are not here. Reloads on demand and whenever an alert changes.

import { h, replace, setText } from './dom.js';
import { clock, durationWords, hostName } from './format.js';
import { fetchHistory } from './alertapi.js';
import { subject, valueWords } from './alertwords.js';
import { safeClass } from './alerts.js';

const LIMIT = 500;

export class HistoryView {
  constructor(state) {
    this.state = state;
    this.seq = 0;
    this.records = [];
    const select = (id, label, options) => h('label', { class: 'field' },
      h('span', { class: 'field-label', text: label }),
      h('select', { id, on: { change: () => this.load() } },
        options.map(([v, t]) => h('option', { value: v, text: t }))));
    this.filters = h('form', { class: 'history-filters', id: 'history-filters', on: { submit: (ev) => { ev.preventDefault(); this.load(); } } },
      select('history-state', 'State', [['all', 'firing and resolved'], ['firing', 'firing'], ['resolved', 'resolved']]),
      select('history-severity', 'Severity', [['', 'any'], ['critical', 'critical'], ['warning', 'warning']]),
      h('label', { class: 'field' }, h('span', { class: 'field-label', text: 'Host id' }),
        this.host = h('input', { id: 'history-host', list: 'history-hosts', autocomplete: 'off', spellcheck: 'false', placeholder: 'any host', on: { change: () => this.load() } })),
      h('label', { class: 'field' }, h('span', { class: 'field-label', text: 'Rule' }),
        this.rule = h('select', { id: 'history-rule', on: { change: () => this.render() } })),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', text: 'Reload' })),
      this.hostList = h('datalist', { id: 'history-hosts' }));
    this.status = h('p', { class: 'muted', id: 'history-status', role: 'status' });
    this.tbody = h('tbody');
    this.root = h('section', { class: 'page history', id: 'history-page' },
      h('h1', { text: 'Alert history' }),
      this.filters, this.status,
      h('div', { class: 'table-scroll' }, h('table', { class: 'history-table', id: 'history-table' },
        h('thead', {}, h('tr', {}, ['Severity', 'Host', 'Alert', 'State', 'Started', 'Ended', 'Duration', 'Peak'].map((t) => h('th', { scope: 'col', text: t })))),
        this.tbody)));
    this.load();
  }

  async load() {
    const seq = ++this.seq;
    setText(this.status, 'Loading…');
    try {
      const records = await fetchHistory({
        state: this.filters.querySelector('#history-state').value,
        severity: this.filters.querySelector('#history-severity').value,
        host: this.host.value.trim(),
        limit: LIMIT,
      });
      if (seq !== this.seq) return;
      this.records = records;
      this.render();
    } catch (e) {
      if (seq === this.seq) setText(this.status, `Cannot read the alert history: ${e.message}`);
    }
  }

  /** Called on every state change; only lists and an alert's arrival matter. */
  update() {
    const names = [...new Set([...this.state.rules.keys(), ...this.records.map((r) => r.rule)])].sort();
    const sig = names.join('\n');
    if (this.rule.dataset.sig !== sig) {
      const chosen = this.rule.value;
      this.rule.dataset.sig = sig;
      replace(this.rule, h('option', { value: '', text: 'any' }), names.map((r) => h('option', { value: r, text: r, selected: r === chosen })));
    }
    const hostSig = [...this.state.hosts.keys()].join('\n');
    if (this.hostList.dataset.sig !== hostSig) {
      this.hostList.dataset.sig = hostSig;
      replace(this.hostList, [...this.state.hosts.keys()].sort().map((id) => h('option', { value: id })));
    }
  }

  render() {
    this.update();
    const rule = this.rule.value;
    const rows = this.records.filter((r) => !rule || r.rule === rule);
    const now = this.state.now();
    setText(this.status, rows.length
      ? `${rows.length} alert${rows.length === 1 ? '' : 's'}${this.records.length >= LIMIT ? ` (the newest ${LIMIT})` : ''}.`
      : 'No stored alert matches.');
    replace(this.tbody, rows.map((r) => {
      const metric = this.state.metricOf(r);
      const start = r.fired_at_ms ?? r.started_at_ms;
      const end = r.ended_at_ms ?? null;
      return h('tr', { class: `history-row state-${safeClass(r.state)}`, dataset: { id: String(r.id), host: r.host_id, rule: r.rule } },
        h('td', { dataset: { label: 'Severity' } }, h('span', { class: `badge sev-${safeClass(r.severity)}`, text: r.severity })),
        h('td', { dataset: { label: 'Host' } }, h('a', { href: `#/host/${encodeURIComponent(r.host_id)}`, text: hostName(r.host_id, this.state.hosts.get(r.host_id)?.info) })),
        h('td', { dataset: { label: 'Alert' }, title: r.message || null, text: `${subject(r, metric)}${r.silenced ? ' (silenced)' : ''}` }),
        h('td', { dataset: { label: 'State' }, text: r.state }),
        h('td', { dataset: { label: 'Started' }, text: clock(start) }),
        h('td', { dataset: { label: 'Ended' }, text: end ? clock(end) : 'still firing' }),
        h('td', { dataset: { label: 'Duration' }, text: durationWords(((end ?? now) - start) / 1000) }),
        h('td', { dataset: { label: 'Peak' }, text: valueWords(metric, r.peak) }));
    }));
  }
}
