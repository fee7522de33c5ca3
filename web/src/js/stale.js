// What the page says when its live feed is gone: the moment the WebSocket
// drops, a banner says since when, and `body[data-stale]` greys every value
// on the page (app.css) so that nothing looks current; each value keeps its
// own age beside it. Cleared the moment the feed is live again.

import { setText } from './dom.js';
import { clock, durationWords } from './format.js';

export class Staleness {
  constructor(banner, state) {
    this.banner = banner;
    this.state = state;
    this.lostAt = 0;
    this.everLive = false;
  }

  /** The connection's new state: "connecting", "live", "reconnecting", "offline". */
  onConnection(s) {
    if (s === 'live') {
      this.everLive = true;
      this.lostAt = 0;
      delete document.body.dataset.stale;
    } else if (this.everLive && !this.lostAt) {
      this.lostAt = Date.now();
      document.body.dataset.stale = 'true';
    }
    this.render();
  }

  render() {
    if (!this.lostAt) {
      this.banner.hidden = true;
      return;
    }
    const newest = Math.max(0, ...[...this.state.hosts.values()].map((h) => h.lastSeenMs ?? 0));
    const secs = (Date.now() - this.lostAt) / 1000;
    setText(this.banner, `Live feed lost ${secs < 1 ? 'just now' : `${durationWords(secs)} ago`}; reconnecting. `
      + `Values shown are from ${newest ? clock(newest) : 'before then'} and may be out of date.`);
    this.banner.hidden = false;
  }
}
