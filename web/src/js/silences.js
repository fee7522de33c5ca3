// The Silences page (#/silences): the silences in force, each with what it
// matches, when it ends and why, and an End button; and a form that makes
// one by rule, host and/or pool for a duration with a comment. Writing
// needs an admin; anyone else sees the list and a way to sign in.

import { h, replace, setText } from './dom.js';
import { clock, durationWords } from './format.js';
import { NeedsLogin } from './auth.js';
import { createSilence, endSilence, fetchSilences } from './alertapi.js';

const DURATIONS = [['15m', '15 minutes'], ['1h', '1 hour'], ['4h', '4 hours'], ['12h', '12 hours'], ['1d', '1 day'], ['7d', '7 days']];

export class SilencesView {
  /** `askLogin(why)` shows the login form; `canWrite()` is true for an admin. */
  constructor(state, { canWrite, askLogin }) {
    this.state = state;
    this.canWrite = canWrite;
    this.askLogin = askLogin;
    this.message = h('p', { class: 'form-message', id: 'silence-message', role: 'status', 'aria-live': 'polite' });
    this.rule = h('select', { id: 'silence-rule', name: 'rule' });
    this.host = h('input', { id: 'silence-host', name: 'host', list: 'silence-hosts', autocomplete: 'off', spellcheck: 'false', placeholder: 'any host (globs: web-*)' });
    this.hostList = h('datalist', { id: 'silence-hosts' });
    this.pool = h('input', { id: 'silence-pool', name: 'pool', autocomplete: 'off', spellcheck: 'false', placeholder: 'any pool' });
    this.duration = h('select', { id: 'silence-duration', name: 'duration' },
      DURATIONS.map(([v, label]) => h('option', { value: v, text: label, selected: v === '1h' })));
    this.comment = h('input', { id: 'silence-comment', name: 'comment', maxlength: '1024', placeholder: 'why (shown to everyone)' });
    this.submit = h('button', { type: 'submit', id: 'silence-create', text: 'Create silence' });
    this.signIn = h('button', { type: 'button', class: 'link-button', text: 'Sign in as an admin', on: { click: () => this.askLogin('Creating or ending a silence needs an admin login.') } });
    this.readOnly = h('p', { class: 'muted', id: 'silence-readonly' }, 'Creating or ending silences needs an admin. ', this.signIn);
    this.fields = h('fieldset', { class: 'silence-fields' },
      h('legend', { text: 'New silence' }),
      field('Rule', this.rule), field('Host', this.host), field('Pool', this.pool),
      field('For', this.duration), field('Comment', this.comment),
      h('div', { class: 'form-actions' }, this.submit));
    this.form = h('form', { class: 'silence-form', id: 'silence-form', on: { submit: (ev) => this.create(ev) } },
      this.fields, this.hostList);
    this.tbody = h('tbody');
    this.table = h('table', { class: 'silences-table', id: 'silences-table' },
      h('thead', {}, h('tr', {}, ['Matches', 'Ends', 'Comment', ''].map((t) => h('th', { scope: 'col', text: t })))),
      this.tbody);
    this.empty = h('p', { class: 'muted', id: 'silences-empty', text: 'No silence is in force.' });
    this.root = h('section', { class: 'page silences', id: 'silences-page' },
      h('h1', { text: 'Silences' }),
      h('p', { class: 'muted', text: 'A silenced alert still shows (apart, in grey) and is still recorded; it is only not notified and not counted as firing.' }),
      this.readOnly, this.form, this.message,
      h('h2', { text: 'In force' }), this.table, this.empty);
    this.refresh();
  }

  async refresh() {
    try {
      this.state.setSilences(await fetchSilences());
    } catch (e) {
      this.say(`Cannot read the silences: ${e.message}`, true);
    }
  }

  say(text, bad = false) {
    setText(this.message, text);
    this.message.classList.toggle('bad', bad);
  }

  async create(ev) {
    ev.preventDefault();
    if (!this.canWrite()) {
      this.askLogin('Creating a silence needs an admin login.');
      return;
    }
    const spec = {
      rule: this.rule.value, host: this.host.value.trim(), pool: this.pool.value.trim(),
      duration: this.duration.value, comment: this.comment.value.trim(),
    };
    if (!spec.rule && !spec.host && !spec.pool) {
      this.say('Choose a rule, a host or a pool: a silence of everything is not allowed.', true);
      return;
    }
    this.submit.disabled = true;
    try {
      const made = await createSilence(spec);
      this.state.setSilences([...(this.state.silences ?? []).filter((s) => s.id !== made.id), made]);
      this.say(`Silence ${made.id} made: ${matches(made)} until ${clock(made.expires_at_ms)}.`);
      this.host.value = '';
      this.pool.value = '';
      this.comment.value = '';
      this.refresh();
    } catch (e) {
      if (e instanceof NeedsLogin) this.askLogin('Creating a silence needs an admin login.');
      else this.say(`Could not create the silence: ${e.message}`, true);
    } finally {
      this.submit.disabled = false;
    }
  }

  async end(silence, button) {
    if (!this.canWrite()) {
      this.askLogin('Ending a silence needs an admin login.');
      return;
    }
    button.disabled = true;
    try {
      await endSilence(silence.id);
      this.state.setSilences((this.state.silences ?? []).filter((s) => s.id !== silence.id));
      this.say(`Silence ${silence.id} ended.`);
      this.refresh();
    } catch (e) {
      button.disabled = false;
      if (e instanceof NeedsLogin) this.askLogin('Ending a silence needs an admin login.');
      else this.say(`Could not end the silence: ${e.message}`, true);
    }
  }

  update() {
    const state = this.state;
    const writable = this.canWrite();
    this.readOnly.hidden = writable;
    this.fields.disabled = !writable;
    const ruleNames = [...state.rules.keys()].sort();
    const sig = ruleNames.join('\n');
    if (this.rule.dataset.sig !== sig) {
      const chosen = this.rule.value;
      this.rule.dataset.sig = sig;
      replace(this.rule, h('option', { value: '', text: 'any rule' }),
        ruleNames.map((r) => h('option', { value: r, text: r, selected: r === chosen })));
    }
    const hostSig = [...state.hosts.keys()].join('\n');
    if (this.hostList.dataset.sig !== hostSig) {
      this.hostList.dataset.sig = hostSig;
      replace(this.hostList, [...state.hosts.keys()].sort().map((id) => h('option', { value: id })));
    }
    const silences = [...(state.silences ?? [])].sort((a, b) => a.expires_at_ms - b.expires_at_ms);
    const listSig = `${writable}|${silences.map((s) => `${s.id}:${s.expires_at_ms}`).join(',')}`;
    const now = state.now();
    if (this.tbody.dataset.sig !== listSig) {
      this.tbody.dataset.sig = listSig;
      replace(this.tbody, silences.map((s) => h('tr', { dataset: { silence: String(s.id) } },
        h('td', { dataset: { label: 'Matches' }, text: matches(s) }),
        h('td', { class: 'silence-ends', dataset: { label: 'Ends', at: String(s.expires_at_ms) } }),
        h('td', { dataset: { label: 'Comment' }, text: s.comment || '–' }),
        h('td', {}, writable ? h('button', {
          type: 'button', class: 'end-silence', text: 'End',
          'aria-label': `End silence of ${matches(s)}`,
          on: { click: (ev) => this.end(s, ev.currentTarget) },
        }) : null))));
    }
    for (const cell of this.tbody.querySelectorAll('.silence-ends')) {
      const at = Number(cell.dataset.at);
      setText(cell, `${clock(at)} (in ${durationWords((at - now) / 1000)})`);
    }
    this.table.hidden = silences.length === 0;
    this.empty.hidden = silences.length > 0;
  }
}

/** "rule worker_pool · host web-1 · pool api" */
export function matches(s) {
  return [s.rule ? `rule ${s.rule}` : null, s.host ? `host ${s.host}` : null, s.pool ? `pool ${s.pool}` : null]
    .filter(Boolean).join(' · ') || 'everything';
}

function field(label, control) {
  return h('label', { class: 'field' }, h('span', { class: 'field-label', text: label }), control);
}
