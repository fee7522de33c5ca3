// Who is signed in: asks GET /api/me, signs in with POST /api/login and out
// with POST /api/logout. The session itself is an HttpOnly cookie this
// script never sees. Emits "change" whenever the answer changes.

export class Auth extends EventTarget {
  constructor() {
    super();
    /** `{ user, role }` when signed in, else null. */
    this.me = null;
    /** Whether the aggregator shows nothing without a login. */
    this.readRequiresLogin = false;
    this.loaded = false;
  }

  get isAdmin() {
    return this.me?.role === 'admin';
  }

  /** Whether the page may show fleet data now. */
  get canRead() {
    return Boolean(this.me) || !this.readRequiresLogin;
  }

  async load() {
    const res = await fetch('/api/me', { headers: { accept: 'application/json' } });
    let body = {};
    try {
      body = await res.json();
    } catch { /* not JSON */ }
    this.readRequiresLogin = Boolean(body.read_requires_login);
    // Nobody signed in: a 200 naming no user (an older aggregator said 401).
    this.me = res.ok && body.user ? { user: String(body.user), role: String(body.role ?? '') } : null;
    this.loaded = true;
    this.dispatchEvent(new Event('change'));
    return this.me;
  }

  /** Signs in; throws an Error with the server's message on failure. */
  async login(user, password) {
    const res = await fetch('/api/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user, password }),
    });
    if (!res.ok) throw new Error(await errorMessage(res));
    await this.load();
  }

  async logout() {
    await fetch('/api/logout', { method: 'POST' });
    await this.load();
  }
}

/** The `error` of a JSON error answer, or the status line. */
export async function errorMessage(res) {
  let message = `${res.status} ${res.statusText}`;
  try {
    message = (await res.json()).error ?? message;
  } catch { /* not JSON */ }
  return message;
}

/** An error from a write the server refused for want of a login. */
export class NeedsLogin extends Error {}
