// Dionysia dashboard: plain browser JavaScript, no framework, no build step.
//
// Every string from the server reaches the page through textContent or an
// attribute, never through innerHTML. The lists are updated in place (keyed
// by id) on each poll, so focus, open forms and typed text survive refreshes.
'use strict';

(() => {
  const POLL_MS = 2000;
  const TOKEN_KEY = 'dionysia.apiToken';
  const KEY_MASK = '••••••••';

  // ---------- small DOM helpers ----------

  const $ = (id) => document.getElementById(id);

  // el builds an element: el('td', {class: 'num'}, 'text', child, ...).
  // Attributes starting with "on" are listeners; text goes in as text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function setText(e, text) {
    const s = text === undefined || text === null ? '' : String(text);
    if (e.textContent !== s) e.textContent = s;
  }

  // syncChildren makes container's children match items, reusing the child
  // made for the same key: create(item) once, update(node, item) every time.
  function syncChildren(container, items, key, create, update) {
    const old = new Map();
    for (const c of Array.from(container.children)) old.set(c.dataset.key, c);
    let prev = null;
    for (const item of items) {
      const k = String(key(item));
      let node = old.get(k);
      if (node) old.delete(k);
      else {
        node = create(item);
        node.dataset.key = k;
      }
      update(node, item);
      const want = prev ? prev.nextSibling : container.firstChild;
      if (want !== node) container.insertBefore(node, want);
      prev = node;
    }
    for (const n of old.values()) n.remove();
  }

  const fmt = {
    num(v, digits) {
      if (typeof v !== 'number' || !isFinite(v)) return '—';
      return v.toFixed(digits === undefined ? 0 : digits);
    },
    since(s) {
      const d = new Date(s);
      if (!s || isNaN(d)) return '';
      return fmt.dur((Date.now() - d.getTime()) / 1000);
    },
    dur(total) {
      let secs = Math.max(0, Math.round(total || 0));
      const h = Math.floor(secs / 3600); secs -= h * 3600;
      const m = Math.floor(secs / 60); secs -= m * 60;
      return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + secs + 's';
    },
  };

  // ---------- notices ----------

  let noticeTimer = 0;
  function notice(text, kind) {
    const n = $('notice');
    setText(n, text);
    n.dataset.kind = kind || 'info';
    n.classList.toggle('shown', !!text);
    clearTimeout(noticeTimer);
    if (text && kind !== 'sticky') noticeTimer = setTimeout(() => notice(''), 5000);
  }

  // ---------- API ----------

  class APIError extends Error {
    constructor(status, message, field) {
      super(message);
      this.status = status;
      this.field = field || '';
    }
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  let needToken = false;

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    if (resp.status === 401) {
      askToken(t ? 'The token was refused: check it and try again.' : '');
      throw new APIError(401, 'API token required');
    }
    if (resp.status === 204) return null;
    let data = null;
    try { data = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) {
      const msg = data && data.error ? data.error : resp.status + ' ' + resp.statusText;
      throw new APIError(resp.status, msg, data && data.field);
    }
    return data;
  }

  // ---------- API token ----------

  function askToken(message) {
    needToken = true;
    const d = $('token-dialog');
    setText($('token-error'), message || '');
    setText($('conn-state'), 'API token needed');
    $('conn-state').dataset.state = 'warn';
    if (!d.open) {
      if (typeof d.showModal === 'function') d.showModal();
      else d.setAttribute('open', '');
    }
    $('token-input').focus();
    $('token-input').select();
  }

  function setupToken() {
    const d = $('token-dialog');
    // The page can do nothing without the token: keep the dialog up.
    d.addEventListener('cancel', (ev) => ev.preventDefault());
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = $('token-input').value.trim();
      if (!v) {
        setText($('token-error'), 'Enter the token the node was started with.');
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, v);
      $('token-input').value = '';
      needToken = false;
      d.close();
      updateForget();
      refreshNow();
    });
    $('forget-token').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      updateForget();
      notice('API token forgotten.');
      refreshNow();
    });
    updateForget();
  }

  function updateForget() { $('forget-token').hidden = !token(); }

  // ---------- views (hash navigation) ----------

  const VIEWS = ['cluster', 'inputs', 'profiles'];

  function currentView() {
    const v = location.hash.replace(/^#/, '');
    return VIEWS.includes(v) ? v : 'cluster';
  }

  function showView() {
    const v = currentView();
    for (const name of VIEWS) $('view-' + name).hidden = name !== v;
    for (const a of document.querySelectorAll('nav a[data-view]')) {
      if (a.dataset.view === v) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  // ---------- polling ----------

  const state = { nodes: [], cluster: null, inputs: [], profiles: [], defaultProfile: '', status: new Map(), recordings: [] };
  let pollTimer = 0;
  let polling = false;

  function refreshNow() {
    clearTimeout(pollTimer);
    poll();
  }

  async function poll() {
    if (polling) return;
    polling = true;
    try {
      const [nodes, cluster, inputs, profiles, recordings] = await Promise.all([
        api('GET', '/v1/nodes'), api('GET', '/v1/cluster'), api('GET', '/v1/inputs'), api('GET', '/v1/profiles'),
        // A node from before recordings has no such route: the rest works.
        api('GET', '/v1/recordings').catch(() => null),
      ]);
      state.recordings = (recordings && recordings.recordings) || [];
      state.nodes = (nodes && nodes.nodes) || [];
      state.cluster = cluster;
      state.inputs = ((inputs && inputs.inputs) || []).slice().sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
      state.profiles = ((profiles && profiles.profiles) || []).slice().sort((a, b) => a.name.localeCompare(b.name));
      state.defaultProfile = (profiles && profiles.default_profile_id) || '';
      // Status is only interesting (and only costs the owner a call) while
      // the stream is open: live, or reconnecting (the owner still serves it).
      const live = state.inputs.filter((i) => i.state !== 'idle');
      const sts = await Promise.all(live.map((i) =>
        api('GET', '/v1/inputs/' + encodeURIComponent(i.id) + '/status').catch(() => null)));
      state.status = new Map();
      live.forEach((i, n) => { if (sts[n]) state.status.set(i.id, sts[n]); });
      render();
      setText($('conn-state'), 'Updated ' + new Date().toLocaleTimeString());
      $('conn-state').dataset.state = 'ok';
    } catch (e) {
      if (!(e instanceof APIError && e.status === 401)) {
        setText($('conn-state'), 'Cannot reach the node: ' + e.message);
        $('conn-state').dataset.state = 'error';
      }
    } finally {
      polling = false;
      // No polling while the token dialog waits: its submit restarts it.
      if (!needToken) pollTimer = setTimeout(poll, POLL_MS);
    }
  }

  function render() {
    renderCluster();
    renderInputs();
    renderProfiles();
    renderPreviewInfo();
  }

  // ---------- cluster ----------

  function renderCluster() {
    const c = state.cluster || {};
    const alive = state.nodes.filter((n) => n.state === 'alive').length;
    const voters = (c.raft_servers || []).filter((s) => s.suffrage === 'Voter' || s.suffrage === 'voter').length;
    const live = state.inputs.filter((i) => i.live).length;
    const reconnecting = state.inputs.filter((i) => i.state === 'reconnecting').length;
    setText($('summary'), (c.node ? 'Node ' + c.node : '') + ' · ' +
      state.nodes.length + (state.nodes.length === 1 ? ' node' : ' nodes') + ' · leader ' + (c.leader || 'none') +
      ' · ' + live + ' live' + (reconnecting ? ' · ' + reconnecting + ' reconnecting' : ''));
    setText($('fact-leader'), c.leader || 'no leader');
    setText($('fact-node'), c.node || '—');
    setText($('fact-alive'), alive + ' of ' + state.nodes.length);
    setText($('fact-voters'), (c.raft_servers ? voters + ' of ' + c.raft_servers.length + ' servers' : '—'));
    setText($('fact-live'), live + ' of ' + state.inputs.length);

    const nodes = state.nodes.slice().sort((a, b) => a.name.localeCompare(b.name));
    syncChildren($('nodes-body'), nodes, (n) => n.name, () => {
      const tr = el('tr');
      for (let i = 0; i < 10; i++) tr.append(el(i === 0 ? 'th' : 'td', i === 0 ? { scope: 'row', class: 'nowrap' } : (i === 5 ? { class: 'num' } : {})));
      tr.cells[0].append(el('span'), ' ', el('span', { class: 'note' }));
      tr.cells[1].append(el('span', { class: 'badge' }));
      tr.cells[2].classList.add('nowrap');
      // Cost against capacity: a bar and the figures (cost units).
      tr.cells[6].classList.add('nowrap');
      tr.cells[6].append(el('meter', { min: 0, max: 1, low: 0.8, high: 0.95, optimum: 0.2, value: 0 }), ' ', el('span'));
      tr.cells[9].append(el('button', {
        type: 'button', class: 'small',
        onclick: async (ev) => {
          const node = state.nodes.find((x) => x.name === ev.currentTarget.dataset.node);
          if (!node) return;
          // No confirmation: a drain costs viewers nothing (streams move
          // make-before-break) and Undrain takes it back.
          const verb = node.draining ? 'undrain' : 'drain';
          try {
            await api('POST', '/v1/nodes/' + encodeURIComponent(node.name) + '/' + verb);
            notice((verb === 'drain' ? 'Draining ' : 'Undrained ') + node.name + '.');
            refreshNow();
          } catch (e) { notice(verb + ' failed: ' + e.message, 'error'); }
        },
      }));
      return tr;
    }, (tr, n) => {
      const cells = tr.cells;
      setText(cells[0].firstChild, n.name);
      setText(cells[0].lastChild, n.local ? '(this node)' : '');
      const gossip = cells[1].firstChild;
      setText(gossip, n.state || 'unknown');
      gossip.className = 'badge state-' + (n.state || 'unknown');
      setText(cells[2], (n.raft_role || '—') + (state.cluster && state.cluster.leader === n.name ? ' ★' : ''));
      cells[2].classList.toggle('leader', n.raft_role === 'leader' || (state.cluster && state.cluster.leader === n.name));
      setText(cells[3], n.http_addr || '—');
      setText(cells[4], [n.rtmp_addr, n.srt_addr, n.rtsp_addr].filter(Boolean).join(' · ') || '—');
      setText(cells[5], n.load);
      const meter = cells[6].firstChild;
      const cap = n.capacity || 0;
      meter.value = cap > 0 ? Math.min(1, (n.cost || 0) / cap) : 0;
      setText(cells[6].lastChild, cap > 0 ? (n.cost || 0) + ' / ' + cap + ' (' + Math.round(100 * (n.cost || 0) / cap) + '%)' : (n.cost || 0) + ' / ?');
      meter.title = 'cost of the streams this node owns against what it offers, in cost units';
      setText(cells[7], streamNames(n.owned_streams));
      setText(cells[8], streamNames(n.live_streams));
      const btn = cells[9].firstChild;
      btn.dataset.node = n.name;
      setText(btn, n.draining ? 'Undrain' : 'Drain');
      btn.setAttribute('aria-label', (n.draining ? 'Undrain' : 'Drain') + ' node ' + n.name);
      btn.disabled = n.state !== 'alive';
    });
  }

  // streamNames shows input names (ids are opaque) for a list of input ids.
  function streamNames(ids) {
    if (!ids || !ids.length) return '—';
    return ids.map((id) => {
      const i = state.inputs.find((x) => x.id === id);
      return i ? i.name : id;
    }).join(', ');
  }

  // ---------- inputs ----------

  const revealed = new Set(); // input ids whose stream key is shown

  function profileName(id) {
    const p = state.profiles.find((x) => x.id === (id || state.defaultProfile));
    return p ? p.name + (id ? '' : ' (default)') : (id || 'default');
  }

  function mask(text, key) {
    if (!text || !key) return text || '';
    return text.split(key).join(KEY_MASK);
  }

  async function copy(text, what) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
      } else {
        // Plain-http pages have no Clipboard API: copy through a selection.
        const ta = el('textarea', { class: 'offscreen', 'aria-hidden': 'true', readonly: true });
        ta.value = text;
        document.body.append(ta);
        ta.select();
        const ok = document.execCommand('copy');
        ta.remove();
        if (!ok) throw new Error('the browser refused');
      }
      notice(what + ' copied to the clipboard.');
    } catch (e) {
      notice('Could not copy ' + what + ': ' + e.message, 'error');
    }
  }

  function createInputCard(input) {
    const id = input.id;
    const hid = 'input-' + id;
    const r = {}; // refs to the parts that change
    r.name = el('h3', { id: hid + '-name' });
    r.badge = el('span', { class: 'badge' });
    r.meta = {
      id: el('dd', {}, el('code', {}, id)),
      owner: el('dd'), ingest: el('dd'), profile: el('dd'), enabled: el('dd'), window: el('dd'), since: el('dd'),
      recording: el('dd'),
    };
    r.key = el('code', { id: hid + '-key', class: 'secret' });
    r.reveal = el('button', {
      type: 'button', 'aria-pressed': 'false', 'aria-controls': hid + '-key',
      onclick: () => {
        if (revealed.has(id)) revealed.delete(id); else revealed.add(id);
        updateInputCard(card, current(id));
      },
    }, 'Reveal');
    r.rotate = el('button', {
      type: 'button',
      onclick: async () => {
        const inp = current(id);
        if (!confirm('Rotate the stream key of "' + inp.name + '"? The old key stops working at once; encoders must be given the new one.')) return;
        try {
          const updated = await api('POST', '/v1/inputs/' + encodeURIComponent(id) + '/rotate-key');
          replaceInput(updated);
          notice('New stream key for "' + updated.name + '".');
        } catch (e) { notice('Rotate failed: ' + e.message, 'error'); }
      },
    }, 'Rotate key');
    r.copyKey = el('button', { type: 'button', onclick: () => copy(current(id).stream_key, 'Stream key') }, 'Copy');
    r.urls = {};
    const urlRows = [['rtmp', 'RTMP publish'], ['srt', 'SRT publish'], ['rtsp', 'RTSP publish'], ['whip', 'WebRTC publish (WHIP)'], ['hls', 'Playback (HLS)']].map(([k, label]) => {
      const code = el('code', { class: 'url' });
      r.urls[k] = code;
      const btn = el('button', {
        type: 'button', class: 'small', 'aria-label': 'Copy ' + label + ' URL',
        onclick: () => copy(urlOf(current(id), k), label + ' URL'),
      }, 'Copy');
      return el('tr', {}, el('th', { scope: 'row' }, label), el('td', {}, code), el('td', {}, btn));
    });
    r.stats = el('div', { class: 'stats' });
    // The stream's latest picture (a new one every 5 s), shown while it is
    // live; hidden until it has loaded and whenever there is none.
    r.thumb = el('img', {
      class: 'thumb', alt: '', width: '160', height: '90', hidden: true,
      onload: () => { r.thumb.hidden = false; },
      onerror: () => { r.thumb.hidden = true; },
    });
    r.preview = el('button', { type: 'button', class: 'primary', onclick: () => openPreview(current(id)) }, 'Preview');
    r.source = el('button', { type: 'button', class: 'source', onclick: () => openSourcePreview(current(id)) }, 'Source (WebRTC)');
    r.toggle = el('button', {
      type: 'button',
      onclick: async () => {
        const inp = current(id);
        try {
          replaceInput(await api('PATCH', '/v1/inputs/' + encodeURIComponent(id), { enabled: !inp.enabled }));
        } catch (e) { notice('Update failed: ' + e.message, 'error'); }
      },
    });
    r.del = el('button', {
      type: 'button', class: 'danger',
      onclick: async () => {
        const inp = current(id);
        if (!confirm('Delete input "' + inp.name + '"? Its stream key and playback id stop working.')) return;
        try {
          await api('DELETE', '/v1/inputs/' + encodeURIComponent(id));
          if (preview.id === id) closePreview();
          notice('Deleted "' + inp.name + '".');
          refreshNow();
        } catch (e) { notice('Delete failed: ' + e.message, 'error'); }
      },
    }, 'Delete');

    const dl = el('dl', { class: 'meta' },
      el('div', {}, el('dt', {}, 'Playback id'), r.meta.id),
      el('div', {}, el('dt', {}, 'Owner'), r.meta.owner),
      el('div', {}, el('dt', {}, 'Ingest node'), r.meta.ingest),
      el('div', {}, el('dt', {}, 'Profile'), r.meta.profile),
      el('div', {}, el('dt', {}, 'Publishing'), r.meta.enabled),
      el('div', {}, el('dt', {}, 'Reconnect window'), r.meta.window),
      el('div', {}, el('dt', {}, 'Live for'), r.meta.since),
      el('div', {}, el('dt', {}, 'Recording'), r.meta.recording));
    // The input's recordings (VOD assets), newest first, each with a play
    // link and a button that plays it in the preview.
    r.recs = el('ul', { class: 'recordings', 'aria-label': 'Recordings' });
    r.recsBox = el('section', { class: 'recordings-box', hidden: true },
      el('h4', {}, 'Recordings'), r.recs);
    const card = el('article', { class: 'card', 'aria-labelledby': hid + '-name', 'data-id': id },
      el('header', { class: 'card-head' }, r.name, r.badge),
      el('div', { class: 'card-top' }, r.thumb, dl),
      el('div', { class: 'keyrow' },
        el('span', { class: 'label', id: hid + '-keylabel' }, 'Stream key'),
        r.key, r.reveal, r.copyKey, r.rotate),
      el('table', { class: 'urls' }, el('caption', { class: 'visually-hidden' }, 'Publish and playback URLs'), el('tbody', {}, ...urlRows)),
      r.stats,
      r.recsBox,
      el('footer', { class: 'card-actions' }, r.preview, r.source, r.toggle, r.del));
    r.key.setAttribute('aria-labelledby', hid + '-keylabel');
    card._refs = r;
    return card;
  }

  function urlOf(input, k) {
    if (k === 'hls') return (input.playback && input.playback.hls) || location.origin + playbackPath(input.id);
    return (input.ingest && input.ingest[k]) || '';
  }

  function current(id) { return state.inputs.find((i) => i.id === id) || { id, name: id }; }

  // An input's state is "idle", "live" or "reconnecting": the publisher went
  // away and the input's reconnect window keeps the stream open for it.
  const BADGES = {
    live: ['Live', 'live'],
    reconnecting: ['Reconnecting', 'reconnecting'],
    idle: ['Idle', 'idle'],
  };

  function replaceInput(updated) {
    if (!updated) return;
    const i = state.inputs.findIndex((x) => x.id === updated.id);
    if (i >= 0) state.inputs[i] = updated; else state.inputs.push(updated);
    renderInputs();
  }

  function updateInputCard(card, input) {
    const r = card._refs;
    const st = state.status.get(input.id);
    const shown = revealed.has(input.id);
    setText(r.name, input.name);
    const ss = input.state;
    const [badge, cls] = ss === 'idle' && !input.enabled ? ['Disabled', 'off'] : BADGES[ss] || BADGES.idle;
    setText(r.badge, badge);
    r.badge.className = 'badge ' + cls;
    r.badge.title = ss === 'reconnecting' && input.reconnect_deadline
      ? 'The publisher went away; the stream waits for it until ' + new Date(input.reconnect_deadline).toLocaleTimeString() : '';
    card.classList.toggle('is-live', ss === 'live');
    card.classList.toggle('is-reconnecting', ss === 'reconnecting');
    setText(r.meta.owner, (st && st.owner_node) || ownerOf(input.id) || '—');
    setText(r.meta.ingest, (st && st.ingest_node) ? st.ingest_node + (st.protocol ? ' (' + st.protocol + ')' : '') : '—');
    setText(r.meta.profile, profileName(input.profile_id));
    setText(r.meta.enabled, input.enabled ? 'enabled' : 'disabled');
    setText(r.meta.window, (input.reconnect_window_seconds ? input.reconnect_window_seconds + ' s' : 'off') +
      (input.hot_standby ? ' · hot standby' : ''));
    setText(r.meta.since, st && st.started_at ? fmt.since(st.started_at) : '—');
    setText(r.key, shown ? input.stream_key : KEY_MASK);
    setText(r.reveal, shown ? 'Hide' : 'Reveal');
    r.reveal.setAttribute('aria-pressed', shown ? 'true' : 'false');
    for (const k of ['rtmp', 'srt', 'rtsp', 'whip']) setText(r.urls[k], shown ? urlOf(input, k) : mask(urlOf(input, k), input.stream_key));
    setText(r.urls.hls, urlOf(input, 'hls'));
    setText(r.toggle, input.enabled ? 'Disable' : 'Enable');
    // A reconnecting stream is still served: players keep what they have.
    r.preview.disabled = ss === 'idle';
    r.preview.title = ss === 'idle' ? 'Nothing is being published to this input' : '';
    // The source exists only while a publisher is connected.
    r.source.disabled = ss !== 'live';
    r.source.title = ss === 'live' ? 'What the publisher sends, before transcoding, over WebRTC (under a second behind)' : 'No publisher connected';
    setText(r.meta.recording, (input.record ? 'every show' : 'off') +
      (input.dvr_window_seconds ? ' · DVR ' + Math.round(input.dvr_window_seconds / 60) + ' min' : ''));
    renderStats(r.stats, input, st);
    updateThumb(r.thumb, input);
    const recs = state.recordings.filter((x) => x.input_id === input.id);
    r.recsBox.hidden = recs.length === 0;
    syncChildren(r.recs, recs, (x) => x.id, (x) => createRecordingItem(input.id, x), updateRecordingItem);
  }

  function createRecordingItem(inputId, rec) {
    const li = el('li', { class: 'recording', 'data-recording': rec.id });
    li._refs = {
      when: el('span', { class: 'when' }),
      status: el('span', { class: 'badge' }),
      link: el('a', { class: 'vod-link', target: '_blank', rel: 'noopener' }, 'm3u8'),
      play: el('button', { type: 'button', class: 'small', onclick: () => openPreview(current(inputId), li._rec) }, 'Play'),
      del: el('button', {
        type: 'button', class: 'small danger',
        onclick: async () => {
          if (!confirm('Delete this recording? Its files go on every node.')) return;
          try {
            await api('DELETE', '/v1/recordings/' + encodeURIComponent(li._rec.id));
            notice('Recording deleted.');
            refreshNow();
          } catch (e) { notice('Delete failed: ' + e.message, 'error'); }
        },
      }, 'Delete'),
    };
    const x = li._refs;
    li.append(x.when, x.status, x.link, x.play, x.del);
    return li;
  }

  function updateRecordingItem(li, rec) {
    li._rec = rec;
    const x = li._refs;
    const started = rec.started_at ? new Date(rec.started_at).toLocaleString() : '—';
    setText(x.when, started + ' · ' + fmt.dur(rec.duration_seconds) +
      (rec.error ? ' · ' + rec.error : ''));
    setText(x.status, rec.status === 'ready' ? 'Ready' : 'Recording');
    x.status.className = 'badge ' + (rec.status === 'ready' ? 'idle' : 'live');
    x.link.href = vodPath(rec);
    x.del.disabled = rec.status !== 'ready';
    x.del.title = rec.status === 'ready' ? '' : 'The show is still being recorded';
  }

  function vodPath(rec) { return '/vod/' + encodeURIComponent(rec.id) + '/master.m3u8'; }

  // thumbPath is an input's thumbnail at a width; a signed input's needs a
  // token the list does not have, so it shows none.
  function thumbPath(input, width) {
    if (input.state === 'idle' || input.playback_policy === 'signed') return '';
    return '/live/' + encodeURIComponent(input.id) + '/thumbnail.jpg' + (width ? '?width=' + width : '');
  }

  // updateThumb asks for a new picture once per refresh period of the
  // thumbnails (5 s, the node's max-age), not on every 2 s repaint.
  function updateThumb(img, input) {
    const base = thumbPath(input, 320);
    if (!base) {
      img.hidden = true;
      img.removeAttribute('src');
      img.dataset.src = '';
      return;
    }
    const src = base + '&t=' + Math.floor(Date.now() / 5000);
    if (img.dataset.src !== src) {
      img.dataset.src = src;
      img.src = src;
    }
  }

  // ownerOf finds the owner in /v1/nodes when no status was fetched.
  function ownerOf(id) {
    const n = state.nodes.find((x) => (x.owned_streams || []).includes(id));
    return n ? n.name : '';
  }

  function renderStats(box, input, st) {
    if (input.state === 'reconnecting') {
      if (box.dataset.mode !== 'reconnecting') {
        box.replaceChildren(el('p', { class: 'muted' }));
        box.dataset.mode = 'reconnecting';
      }
      const left = input.reconnect_deadline ? Math.max(0, Math.round((Date.parse(input.reconnect_deadline) - Date.now()) / 1000)) : null;
      setText(box.firstChild, 'The publisher went away: the stream waits for it' + (left === null ? '.' : ' ' + left + ' s more, then ends.'));
      return;
    }
    if (!input.live || !st) {
      if (box.dataset.mode !== 'idle') {
        box.replaceChildren(el('p', { class: 'muted' }, input.live ? 'Waiting for the transcoder…' : 'Not live: publish to one of the URLs above.'));
        box.dataset.mode = 'idle';
      }
      if (input.live) setText(box.firstChild, 'Waiting for the transcoder…');
      return;
    }
    if (box.dataset.mode !== 'live') {
      const tbody = el('tbody');
      box.replaceChildren(
        el('p', { class: 'transcoder' }),
        el('table', { class: 'grid compact' },
          el('caption', {}, 'Renditions'),
          el('thead', {}, el('tr', {}, ...['Rendition', 'Size', 'FPS', 'Bitrate (kbps)', 'Segments', 'Media sequence'].map((h, i) =>
            el('th', { scope: 'col', class: i >= 2 ? 'num' : undefined }, h)))),
          tbody));
      box.dataset.mode = 'live';
    }
    const t = st.transcoder;
    setText(box.firstChild, t
      ? 'Transcoder ' + (t.running ? 'running' : 'stopped') + ' · ' + fmt.num(t.fps, 1) + ' fps · speed ' + fmt.num(t.speed, 2) + '× · ' +
        (t.bitrate_kbps > 0 ? fmt.num(t.bitrate_kbps) + ' kbps · ' : '') + t.frames + ' frames' + (t.drop_frames ? ' · ' + t.drop_frames + ' dropped' : '') +
        (t.restarts ? ' · ' + t.restarts + ' restarts' : '')
      : 'Transcoder: no report yet');
    syncChildren(box.querySelector('tbody'), st.renditions || [], (x) => x.name, () => {
      const tr = el('tr', {}, el('th', { scope: 'row' }));
      for (let i = 0; i < 5; i++) tr.append(el('td', { class: i >= 1 ? 'num' : undefined }));
      return tr;
    }, (tr, x) => {
      const c = tr.cells;
      setText(c[0], x.name);
      setText(c[1], x.width && x.height ? x.width + '×' + x.height : '—');
      setText(c[2], fmt.num(x.fps, 1));
      setText(c[3], fmt.num(x.bitrate_kbps));
      setText(c[4], x.segments);
      setText(c[5], x.media_sequence);
    });
  }

  function renderInputs() {
    const list = $('inputs-list');
    $('inputs-empty').hidden = state.inputs.length > 0;
    syncChildren(list, state.inputs, (i) => i.id, createInputCard, updateInputCard);
    // The profile choices follow the profiles, keeping what the user picked.
    const sel = $('input-profile');
    const picked = sel.value;
    const opts = [{ id: '', name: 'Cluster default' }].concat(state.profiles);
    syncChildren(sel, opts, (p) => p.id || '-default-', (p) => el('option', { value: p.id }), (o, p) => {
      setText(o, p.name + (p.id && p.id === state.defaultProfile ? ' (default)' : ''));
    });
    if (Array.from(sel.options).some((o) => o.value === picked)) sel.value = picked;
  }

  function setupInputForm() {
    const form = $('input-form');
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form, $('input-form-error'));
      const name = $('input-name').value.trim();
      if (!name) {
        showFieldError(form, $('input-form-error'), 'name', 'Give the input a name.');
        return;
      }
      const body = {
        name, enabled: $('input-enabled').checked, hot_standby: $('input-hot-standby').checked,
        record: $('input-record').checked,
      };
      if ($('input-dvr').value.trim() !== '') body.dvr_window_seconds = Number($('input-dvr').value);
      if ($('input-profile').value) body.profile_id = $('input-profile').value;
      if ($('input-window').value.trim() !== '') body.reconnect_window_seconds = Number($('input-window').value);
      const btn = form.querySelector('button[type=submit]');
      btn.disabled = true;
      try {
        const created = await api('POST', '/v1/inputs', body);
        form.reset();
        replaceInput(created);
        notice('Created input "' + created.name + '": publish to its RTMP, SRT, RTSP or WHIP URL.');
        const card = $('inputs-list').querySelector('[data-key="' + CSS.escape(created.id) + '"]');
        if (card) card.scrollIntoView({ block: 'nearest' });
      } catch (e) {
        showFieldError(form, $('input-form-error'), e.field, e.message);
      } finally {
        btn.disabled = false;
      }
    });
  }

  function clearErrors(form, box) {
    setText(box, '');
    for (const e of form.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
  }

  // showFieldError shows an API error and marks the field it names
  // ("renditions[1].width" finds data-field="renditions[1].width").
  function showFieldError(form, box, field, message) {
    setText(box, message);
    if (!field) return;
    const target = Array.from(form.querySelectorAll('[data-field]')).find((x) => x.dataset.field === field);
    if (target) {
      target.setAttribute('aria-invalid', 'true');
      target.setAttribute('aria-describedby', box.id);
      target.focus();
    }
  }

  // ---------- preview player ----------

  // window.dionysiaPreview is what the player did, for people and for the
  // browser test: the engine, whether media was attached, and hls.js events.
  const preview = { id: '', hls: null, pc: null, retry: 0 };
  const stats = window.dionysiaPreview = {
    inputId: '', engine: '', mediaAttached: false, manifestParsed: false,
    fragLoaded: 0, fragParsed: 0, level: '', errors: [],
  };

  function playbackPath(id) { return '/live/' + encodeURIComponent(id) + '/master.m3u8'; }

  let hlsLoading = null;
  function loadHls() {
    if (window.Hls) return Promise.resolve(window.Hls);
    if (!hlsLoading) {
      hlsLoading = new Promise((resolve) => {
        const s = el('script', { src: '/assets/hls.min.js' });
        s.addEventListener('load', () => resolve(window.Hls || null));
        s.addEventListener('error', () => resolve(null));
        document.head.append(s);
      });
    }
    return hlsLoading;
  }

  function resetStats(id, engine) {
    Object.assign(stats, { inputId: id, engine, mediaAttached: false, manifestParsed: false, fragLoaded: 0, fragParsed: 0, level: '', errors: [] });
  }

  function problem(text) {
    stats.errors.push(text);
    if (stats.errors.length > 20) stats.errors.shift();
    setText($('preview-error'), text);
  }

  // openPreview plays an input's live stream, or one of its recordings.
  async function openPreview(input, rec) {
    closePreview();
    const id = input.id;
    let src = rec ? vodPath(rec) : playbackPath(id);
    preview.id = id;
    if (input.playback_policy === 'signed') {
      // A signed input plays only with a token: ask the API for a short-lived URL.
      try {
        const signed = await api('POST', '/v1/inputs/' + encodeURIComponent(id) + '/playback-url', { ttl_seconds: 3600 });
        const u = new URL(signed.url);
        // The token is the input's: it opens its recordings too.
        src = (rec ? vodPath(rec) : u.pathname) + u.search;
      } catch (e) {
        // Without its token the player would only get 403s: say why and stop.
        if (preview.id !== id) return;
        $('preview').hidden = false;
        setText($('preview-name'), input.name);
        setText($('preview-url'), src);
        resetStats(id, 'none');
        problem('signed playback URL: ' + e.message);
        return;
      }
      if (preview.id !== id) return;
    }
    $('preview').hidden = false;
    setText($('preview-name'), input.name);
    setText($('preview-url'), src);
    setText($('preview-error'), 'none');
    const video = $('preview-video');
    video.setAttribute('aria-label', 'Live preview of ' + input.name);
    // The latest thumbnail stands in until the first frame plays.
    const poster = thumbPath(input, 0);
    if (poster) video.poster = poster; else video.removeAttribute('poster');
    const Hls = await loadHls();
    if (preview.id !== id) return; // closed or switched meanwhile
    if (Hls && Hls.isSupported()) {
      // Low-latency profiles carry LL-HLS parts: hls.js plays them about a
      // second behind the live edge instead of three segments.
      const prof = state.profiles.find((x) => x.id === (input.profile_id || state.defaultProfile));
      const ll = !!prof && prof.latency === 'low';
      resetStats(id, 'hls.js ' + (Hls.version || '') + (ll ? ' · low latency' : ''));
      stats.lowLatency = ll;
      // No liveSyncDuration(Count) here: hls.js lets either override the
      // playlist's PART-HOLD-BACK, which put a low-latency preview three
      // whole segments behind. maxLiveSyncPlaybackRate lets it play up to
      // 1.25x to reach that target: it starts a keyframe interval plus its
      // own start-up time behind it, and its default (1) never catches up.
      const conf = { lowLatencyMode: ll, manifestLoadingMaxRetry: 6, levelLoadingMaxRetry: 6 };
      if (ll) conf.maxLiveSyncPlaybackRate = 1.25;
      const hls = new Hls(conf);
      preview.hls = hls;
      hls.on(Hls.Events.MEDIA_ATTACHED, () => { stats.mediaAttached = true; });
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        stats.manifestParsed = true;
        video.play().catch((e) => problem('autoplay: ' + e.message + ' (press play)'));
      });
      hls.on(Hls.Events.FRAG_LOADED, () => { stats.fragLoaded++; });
      hls.on(Hls.Events.FRAG_PARSED, () => { stats.fragParsed++; });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => {
        const l = hls.levels[d.level];
        stats.level = l ? (l.name || (l.width + '×' + l.height)) + (l.bitrate ? ' · ' + Math.round(l.bitrate / 1000) + ' kbps' : '') : '';
      });
      hls.on(Hls.Events.ERROR, (_, d) => {
        problem((d.fatal ? 'fatal ' : '') + d.type + ': ' + d.details + (d.fatal ? '' : ' (handled by hls.js)'));
        if (!d.fatal) return;
        if (d.type === Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
        } else if (d.type === Hls.ErrorTypes.NETWORK_ERROR) {
          // A stream that just started (or moved to another node) may 404
          // for a moment: try again a little later.
          clearTimeout(preview.retry);
          preview.retry = setTimeout(() => { if (preview.hls === hls) hls.loadSource(src); }, 2000);
        }
      });
      hls.attachMedia(video);
      hls.loadSource(src);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      // Safari plays HLS by itself.
      resetStats(id, 'native HLS');
      stats.mediaAttached = true;
      video.src = src;
      video.play().catch((e) => problem('autoplay: ' + e.message + ' (press play)'));
    } else {
      resetStats(id, 'none');
      problem('No HLS player: hls.js did not load (GET /assets/hls.min.js failed: run `make deps` on the node) and this browser has no native HLS.');
    }
    renderPreviewInfo();
    $('preview').scrollIntoView({ block: 'nearest' });
    $('preview-close').focus();
  }

  // openSourcePreview shows the publisher's own stream, before transcoding,
  // over WebRTC (WHEP) from the node the publisher is connected to: this
  // node passes the offer on and the media comes straight from there. The
  // page needs nothing but the API token.
  async function openSourcePreview(input) {
    closePreview();
    const id = input.id;
    preview.id = id;
    $('preview').hidden = false;
    setText($('preview-name'), input.name + ' (source)');
    const path = '/v1/inputs/' + encodeURIComponent(id) + '/whep';
    setText($('preview-url'), path);
    setText($('preview-error'), 'none');
    resetStats(id, 'WebRTC (WHEP) · source');
    const video = $('preview-video');
    video.setAttribute('aria-label', 'Source preview of ' + input.name);
    const poster = thumbPath(input, 0);
    if (poster) video.poster = poster; else video.removeAttribute('poster');
    const pc = new RTCPeerConnection({ iceServers: [] });
    preview.pc = pc;
    const media = new MediaStream();
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.ontrack = (e) => {
      media.addTrack(e.track);
      if (video.srcObject !== media) video.srcObject = media;
      stats.mediaAttached = true;
      video.play().catch((err) => problem('autoplay: ' + err.message + ' (press play)'));
    };
    pc.onconnectionstatechange = () => {
      stats.level = 'WebRTC ' + pc.connectionState;
      if (pc.connectionState === 'failed') problem('WebRTC connection failed (is the publisher\'s node reachable on its --webrtc-udp-addr?)');
      renderPreviewInfo();
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      // The offer carries its candidates: the endpoint takes no trickle.
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
        setTimeout(resolve, 1000);
      });
      if (preview.pc !== pc) return;
      const headers = { 'Content-Type': 'application/sdp' };
      const t = token();
      if (t) headers.Authorization = 'Bearer ' + t;
      const resp = await fetch(path, { method: 'POST', headers, body: pc.localDescription.sdp, cache: 'no-store' });
      const body = await resp.text();
      if (resp.status === 401) askToken('');
      if (resp.status !== 201) {
        let msg = resp.status + ' ' + resp.statusText;
        try { msg = JSON.parse(body).error || msg; } catch (e) { /* not JSON */ }
        throw new Error(msg);
      }
      if (preview.pc !== pc) return;
      await pc.setRemoteDescription({ type: 'answer', sdp: body });
      stats.manifestParsed = true;
    } catch (e) {
      if (preview.pc === pc) problem('source preview: ' + e.message);
    }
    renderPreviewInfo();
    $('preview').scrollIntoView({ block: 'nearest' });
    $('preview-close').focus();
  }

  function closePreview() {
    clearTimeout(preview.retry);
    if (preview.hls) preview.hls.destroy();
    preview.hls = null;
    if (preview.pc) preview.pc.close();
    preview.pc = null;
    $('preview-video').srcObject = null;
    preview.id = '';
    const video = $('preview-video');
    video.pause();
    video.removeAttribute('src');
    video.removeAttribute('poster');
    video.load();
    $('preview').hidden = true;
  }

  function renderPreviewInfo() {
    if (!preview.id) return;
    const v = $('preview-video');
    setText($('preview-engine'), stats.engine || '—');
    let buffered = 0;
    if (v.buffered.length) buffered = v.buffered.end(v.buffered.length - 1) - v.currentTime;
    setText($('preview-time'), fmt.num(v.currentTime, 1) + ' s (' + fmt.num(Math.max(0, buffered), 1) + ' s buffered)' + (v.paused ? ' · paused' : ''));
    setText($('preview-level'), stats.level || (v.videoWidth ? v.videoWidth + '×' + v.videoHeight : '—'));
    setText($('preview-frags'), stats.fragLoaded);
    // hls.js's own estimate of how far behind the live edge the picture is.
    const lat = preview.hls && Number.isFinite(preview.hls.latency) ? preview.hls.latency : NaN;
    stats.latency = lat;
    setText($('preview-latency'), Number.isFinite(lat) && lat > 0 ? fmt.num(lat, 1) + ' s behind live' + (stats.lowLatency ? ' (LL-HLS)' : '') : '—');
  }

  function setupPreview() {
    $('preview-close').addEventListener('click', closePreview);
    $('preview-video').addEventListener('timeupdate', renderPreviewInfo);
  }

  // ---------- profiles ----------

  let editing = ''; // id of the profile being edited, '' = a new one

  function renditionSummary(p) {
    return (p.renditions || []).map((r) => r.passthrough
      ? r.name + ' passthrough'
      : r.name + ' ' + r.width + '×' + r.height + ' ' + r.video_bitrate_kbps + 'k').join(' · ');
  }

  function renderProfiles() {
    syncChildren($('profiles-body'), state.profiles, (p) => p.id, (p) => {
      const id = p.id;
      const tr = el('tr', {}, el('th', { scope: 'row' }));
      for (let i = 0; i < 6; i++) tr.append(el('td', { class: i === 1 ? 'num' : undefined }));
      const edit = el('button', { type: 'button', class: 'small', onclick: () => editProfile(id) }, 'Edit');
      const del = el('button', {
        type: 'button', class: 'small danger',
        onclick: async () => {
          const cur = state.profiles.find((x) => x.id === id);
          if (!confirm('Delete profile "' + (cur ? cur.name : id) + '"?')) return;
          try {
            await api('DELETE', '/v1/profiles/' + encodeURIComponent(id));
            notice('Profile deleted.');
            if (editing === id) resetProfileForm();
            refreshNow();
          } catch (e) { notice('Delete failed: ' + e.message, 'error'); }
        },
      }, 'Delete');
      tr.append(el('td', { class: 'row-actions' }, edit, del));
      tr._edit = edit;
      tr._del = del;
      return tr;
    }, (tr, p) => {
      const c = tr.cells;
      setText(c[0], p.name + (p.id === state.defaultProfile ? ' (default)' : ''));
      c[1].replaceChildren(el('code', {}, p.id));
      setText(c[2], p.segment_seconds + ' s');
      c[4].classList.add('nowrap');
      setText(c[3], p.video_preset);
      // Profiles stored before these fields existed have them empty: ts, standard.
      setText(c[4], p.segment_format === 'fmp4' ? 'fMP4' : 'MPEG-TS');
      setText(c[5], p.latency === 'low' ? 'Low (' + (p.part_ms || 334) + ' ms parts)' : 'Standard');
      setText(c[6], renditionSummary(p));
      tr._edit.setAttribute('aria-label', 'Edit profile ' + p.name);
      tr._del.setAttribute('aria-label', 'Delete profile ' + p.name);
    });
  }

  const REND_FIELDS = [
    ['name', 'Name', 'text'], ['width', 'Width', 'number'], ['height', 'Height', 'number'],
    ['video_bitrate_kbps', 'Video kbps', 'number'], ['audio_bitrate_kbps', 'Audio kbps', 'number'],
    ['fps', 'FPS', 'number'], ['passthrough', 'Passthrough', 'checkbox'],
  ];

  function addRenditionRow(r) {
    const tr = el('tr');
    for (const [k, , type] of REND_FIELDS) {
      const input = el('input', { type, 'data-name': k });
      if (type === 'number') { input.min = '0'; input.step = k === 'width' || k === 'height' ? '2' : '1'; }
      if (type === 'checkbox') input.checked = !!(r && r[k]);
      else if (r && r[k] !== undefined && r[k] !== 0) input.value = String(r[k]);
      tr.append(el('td', {}, input));
    }
    tr.append(el('td', {}, el('button', {
      type: 'button', class: 'small danger', onclick: () => { tr.remove(); numberRenditions(); },
    }, 'Remove')));
    $('renditions-body').append(tr);
    numberRenditions();
    return tr;
  }

  // numberRenditions keeps labels and API field names in step with the rows.
  function numberRenditions() {
    Array.from($('renditions-body').rows).forEach((tr, i) => {
      for (const input of tr.querySelectorAll('input')) {
        const k = input.dataset.name;
        const label = REND_FIELDS.find((f) => f[0] === k)[1];
        input.setAttribute('aria-label', 'Rendition ' + (i + 1) + ' ' + label);
        input.dataset.field = 'renditions[' + i + '].' + k;
      }
      tr.querySelector('button').setAttribute('aria-label', 'Remove rendition ' + (i + 1));
    });
  }

  function readProfileForm() {
    const int = (v) => (v.trim() === '' ? 0 : Number(v));
    const body = {
      name: $('profile-name').value.trim(),
      segment_seconds: int($('profile-segment').value),
      video_preset: $('profile-preset').value,
      segment_format: $('profile-format').value,
      latency: $('profile-latency').value,
      part_ms: int($('profile-part').value),
      renditions: Array.from($('renditions-body').rows).map((tr) => {
        const r = {};
        for (const input of tr.querySelectorAll('input')) {
          const k = input.dataset.name;
          r[k] = input.type === 'checkbox' ? input.checked : (k === 'name' ? input.value.trim() : int(input.value));
        }
        return r;
      }),
    };
    const id = $('profile-id').value.trim();
    if (!editing && id) body.id = id;
    return body;
  }

  function resetProfileForm() {
    editing = '';
    const form = $('profile-form');
    form.reset();
    clearErrors(form, $('profile-form-error'));
    $('renditions-body').replaceChildren();
    addRenditionRow({ name: '720p', width: 1280, height: 720, video_bitrate_kbps: 2800, audio_bitrate_kbps: 128 });
    addRenditionRow({ name: '360p', width: 640, height: 360, video_bitrate_kbps: 700, audio_bitrate_kbps: 96 });
    setText($('profile-form-title'), 'New profile');
    setText($('profile-submit'), 'Create profile');
    $('profile-cancel').hidden = true;
    $('profile-id-field').hidden = false;
  }

  function editProfile(id) {
    const p = state.profiles.find((x) => x.id === id);
    if (!p) return;
    editing = id;
    const form = $('profile-form');
    clearErrors(form, $('profile-form-error'));
    $('profile-name').value = p.name;
    $('profile-id').value = p.id;
    $('profile-id-field').hidden = true;
    $('profile-segment').value = String(p.segment_seconds);
    $('profile-preset').value = p.video_preset;
    $('profile-format').value = p.segment_format || 'ts';
    $('profile-latency').value = p.latency || 'standard';
    $('profile-part').value = p.part_ms ? String(p.part_ms) : '';
    $('renditions-body').replaceChildren();
    for (const r of p.renditions || []) addRenditionRow(r);
    setText($('profile-form-title'), 'Edit profile: ' + p.name);
    setText($('profile-submit'), 'Save changes');
    $('profile-cancel').hidden = false;
    form.scrollIntoView({ block: 'start' });
    $('profile-name').focus();
  }

  function setupProfileForm() {
    const form = $('profile-form');
    $('add-rendition').addEventListener('click', () => {
      const tr = addRenditionRow(null);
      tr.querySelector('input').focus();
    });
    $('profile-cancel').addEventListener('click', resetProfileForm);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearErrors(form, $('profile-form-error'));
      const body = readProfileForm();
      const btn = $('profile-submit');
      btn.disabled = true;
      try {
        const saved = editing
          ? await api('PUT', '/v1/profiles/' + encodeURIComponent(editing), body)
          : await api('POST', '/v1/profiles', body);
        notice((editing ? 'Saved' : 'Created') + ' profile "' + saved.name + '".');
        resetProfileForm();
        refreshNow();
      } catch (e) {
        showFieldError(form, $('profile-form-error'), e.field, e.message);
      } finally {
        btn.disabled = false;
      }
    });
    resetProfileForm();
  }

  // ---------- start ----------

  function start() {
    // What the player can decode, for the curious and for the browser test.
    window.dionysiaCodecs = {
      mse: typeof MediaSource !== 'undefined',
      h264: typeof MediaSource !== 'undefined' && MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"'),
    };
    setupToken();
    setupInputForm();
    setupProfileForm();
    setupPreview();
    window.addEventListener('hashchange', showView);
    showView();
    poll();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
