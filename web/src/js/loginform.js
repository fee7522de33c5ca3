// The login form and the signed-in user in the top bar: shows the form
// (saying why it is asked for, and with no way around it when reading needs
// a login), signs in through `Auth`, and offers Sign in / Sign out.

import { h, replace, setText } from './dom.js';

export class LoginForm {
  /** `onSignedIn()` runs after a successful login. */
  constructor(auth, { onSignedIn }) {
    this.auth = auth;
    this.onSignedIn = onSignedIn;
    this.root = document.getElementById('login');
    this.form = document.getElementById('login-form');
    this.error = document.getElementById('login-error');
    this.who = document.getElementById('who');
    this.form.addEventListener('submit', (ev) => this.submit(ev));
    document.getElementById('login-cancel').addEventListener('click', () => this.hide());
  }

  get shown() {
    return !this.root.hidden;
  }

  /** The user's name and Sign out, or Sign in, in the top bar. */
  renderWho() {
    const { auth } = this;
    if (auth.me) {
      replace(this.who,
        h('span', { class: 'who-name', text: `${auth.me.user} · ${auth.me.role}` }),
        h('button', { type: 'button', class: 'who-button', id: 'sign-out', text: 'Sign out', on: { click: () => this.signOut() } }));
    } else if (auth.loaded && this.shown) {
      replace(this.who);
    } else if (auth.loaded) {
      replace(this.who, h('button', { type: 'button', class: 'who-button', id: 'sign-in', text: 'Sign in', on: { click: () => this.show('') } }));
    }
  }

  /** Shows the login form; `why` says what it is for. */
  show(why) {
    const required = !this.auth.canRead;
    setText(document.getElementById('login-why'),
      why || (required ? 'This aggregator needs a login to show its fleet.' : 'Sign in to change things, such as silencing alerts.'));
    document.getElementById('login-cancel').hidden = required;
    this.error.hidden = true;
    this.root.hidden = false;
    document.body.dataset.auth = required ? 'required' : 'optional';
    this.renderWho();
    document.getElementById('login-user').focus();
  }

  hide() {
    this.root.hidden = true;
    delete document.body.dataset.auth;
    document.getElementById('login-password').value = '';
    this.renderWho();
  }

  async submit(ev) {
    ev.preventDefault();
    const button = document.getElementById('login-submit');
    button.disabled = true;
    this.error.hidden = true;
    try {
      await this.auth.login(document.getElementById('login-user').value, document.getElementById('login-password').value);
      this.hide();
      this.onSignedIn();
    } catch (e) {
      setText(this.error, e.message);
      this.error.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  async signOut() {
    try {
      await this.auth.logout();
    } finally {
      // A clean page: nothing of the signed-in view stays behind.
      location.reload();
    }
  }
}
