// The SSE transport: frames arrive on `GET /sse` (text/event-stream, read with fetch so it
// works in Node and browsers alike and can resume with Last-Event-ID); frames to the server
// are POSTed one by one, in order, to the session's URL that the first `session` event names.

/** Parses text/event-stream chunks into events ({event, data, id}). */
export class SseParser {
  constructor(onEvent, onComment) {
    this.buf = '';
    this.reset();
    this.onEvent = onEvent;
    this.onComment = onComment || (() => {});
  }

  reset() {
    this.event = '';
    this.data = [];
    this.id = null;
  }

  push(chunk) {
    this.buf += chunk;
    let nl;
    while ((nl = this.buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buf.slice(0, nl);
      const len = this.buf[nl] === '\r' && this.buf[nl + 1] === '\n' ? 2 : 1;
      this.buf = this.buf.slice(nl + len);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0 || this.event) {
        this.onEvent({ event: this.event || 'message', data: this.data.join('\n'), id: this.id });
      }
      this.reset();
      return;
    }
    if (line[0] === ':') return this.onComment(line.slice(1).trim());
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id') this.id = value;
  }
}

/** One SSE session, shaped like the client's WebSocket wrapper. */
export class SseTransport {
  constructor(url, fetchImpl, token) {
    this.kind = 'sse';
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    this.onactivity = null;
    this.oneventid = null;
    this.fetch = fetchImpl;
    this.postUrl = null;
    this.outbox = [];
    this.posting = false;
    this.closed = false;
    this.abort = new AbortController();
    this.headers = token ? { authorization: `Bearer ${token}` } : {};
    this.run(url).catch((e) => this.finish(1006, e && e.message ? e.message : String(e)));
  }

  async run(url) {
    const res = await this.fetch(url.toString(), {
      headers: { accept: 'text/event-stream', ...this.headers },
      signal: this.abort.signal,
      cache: 'no-store',
    });
    if (!res.ok) {
      let message = `HTTP ${res.status}`;
      try { const b = await res.json(); message += `: ${b.error && (b.error.message || b.error)}`; } catch (e) { /* not JSON */ }
      // A refused identity (400/401/403) will not change by retrying; the rest may.
      return this.finish(res.status === 401 || res.status === 403 || res.status === 400 ? 1008 : 1006, message);
    }
    const parser = new SseParser((ev) => this.onEvent(ev, url), () => this.onactivity && this.onactivity());
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
      if (this.closed) return;
    }
    this.finish(1006, 'event stream ended');
  }

  onEvent(ev, url) {
    if (this.closed) return;
    if (ev.id && this.oneventid) this.oneventid(ev.id);
    if (ev.event === 'session') {
      const s = JSON.parse(ev.data);
      this.postUrl = new URL(s.post, url).toString();
      if (this.onopen) this.onopen();
      this.pump();
      return;
    }
    if (ev.event === 'close') {
      let c = {};
      try { c = JSON.parse(ev.data); } catch (e) { /* keep defaults */ }
      return this.finish(c.code || 1006, c.reason || '');
    }
    if (this.onmessage) this.onmessage(ev.data);
  }

  send(text) {
    if (this.closed) throw new Error('SSE session closed');
    this.outbox.push(text);
    this.pump();
  }

  async pump() {
    if (this.posting || !this.postUrl) return;
    this.posting = true;
    try {
      while (this.outbox.length > 0 && !this.closed) {
        const body = this.outbox.shift();
        const res = await this.fetch(this.postUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...this.headers },
          body,
        });
        if (!res.ok && res.status === 404) return this.finish(1006, 'SSE session is gone');
      }
    } catch (e) {
      this.finish(1006, `POST failed: ${e.message}`);
    } finally {
      this.posting = false;
    }
  }

  close(code, reason) {
    if (this.closed) return;
    const url = this.postUrl;
    this.closed = true;
    this.abort.abort();
    if (url) {
      this.fetch(url, { method: 'DELETE', headers: this.headers }).catch(() => { /* the stream is gone either way */ });
    }
    if (this.onclose) this.onclose(code, reason);
  }

  finish(code, reason) {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    if (this.onclose) this.onclose(code, reason);
  }
}
