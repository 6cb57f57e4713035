// The test player's page logic: attaches hls.js or dash.js to a muted
// <video>, and every 100 ms samples what a viewer would see. The Go side
// reads window.harness.stats(). Times are on the page clock
// (performance.now(), ms).
(() => {
  'use strict';
  const cfg = window.harnessConfig;
  const video = document.getElementById('video');
  const MAX_FATAL = 20;
  const MAX_ERRORS = 100;
  const MAX_STALLS = 1000;
  const SAMPLE_MS = 100;
  const t0 = performance.now();

  const s = {
    engine: cfg.engine,
    fatal: [], // the first MAX_FATAL
    errors: [], // the last MAX_ERRORS
    errorCount: 0,
    started: false,
    startupMs: 0,
    played: 0, // seconds of media played, seeks excluded
    lastTime: 0,
    lastWall: t0,
    lastAdvance: -1, // page time of the last sample that saw playback
    stallStart: -1, // page time the current stall began, -1 when none
    stalls: [], // the last MAX_STALLS finished stalls: [start, end]
    stallCount: 0,
    longestStallMs: 0,
    level: -1,
    height: 0,
    levelSwitches: 0,
    latency: null,
  };

  function fatal(msg) {
    if (s.fatal.length < MAX_FATAL) s.fatal.push(msg);
    console.error('fatal: ' + msg);
  }
  function nonFatal(msg) {
    s.errorCount++;
    if (s.errors.length >= MAX_ERRORS) s.errors.shift();
    s.errors.push(msg);
  }
  function setLevel(index, height) {
    if (index === undefined || index === null || index < 0) return;
    if (s.level >= 0 && index !== s.level) s.levelSwitches++;
    s.level = index;
    s.height = height || 0;
  }

  video.addEventListener('error', () => {
    const e = video.error;
    fatal('video element: MediaError ' + (e ? e.code + ' ' + e.message : 'unknown'));
  });

  let hls = null;
  let dash = null;
  if (cfg.engine === 'hls') {
    if (!window.Hls || !Hls.isSupported()) {
      fatal('hls.js: not supported in this browser (no MediaSource?)');
    } else {
      // hls.js defaults to low-latency mode: say which one is wanted.
      hls = new Hls({ lowLatencyMode: cfg.lowLatency, debug: false });
      hls.on(Hls.Events.ERROR, (_, d) => {
        const url = d.url || (d.frag && d.frag.url) || (d.context && d.context.url) || '';
        const code = d.response && d.response.code ? ' ' + d.response.code : '';
        const msg = d.type + '/' + d.details + code + (url ? ' ' + url : '') + (d.reason ? ' (' + d.reason + ')' : '');
        if (d.fatal) fatal(msg);
        else nonFatal(msg);
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => {
        const l = hls.levels[d.level];
        setLevel(d.level, l ? l.height : 0);
      });
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        video.play().catch((e) => nonFatal('play(): ' + e));
      });
      hls.attachMedia(video);
      hls.loadSource(cfg.url);
    }
  } else if (cfg.engine === 'dash') {
    if (!window.dashjs) {
      fatal('dash.js: not loaded');
    } else {
      dash = dashjs.MediaPlayer().create();
      const settings = { debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } };
      if (cfg.lowLatency) {
        // A short target delay with catch-up: dash.js's low-latency play.
        settings.streaming = {
          delay: { liveDelay: 3 },
          liveCatchup: { enabled: true, maxDrift: 1.5, playbackRate: { min: -0.3, max: 0.3 } },
        };
      }
      dash.updateSettings(settings);
      const ev = dashjs.MediaPlayer.events;
      const onFatal = (e) => {
        const err = e.error || e;
        fatal('dash.js ' + e.type + ': ' + (err.code !== undefined ? err.code + ' ' : '') + (err.message || JSON.stringify(err)));
      };
      dash.on(ev.ERROR, onFatal);
      dash.on(ev.PLAYBACK_ERROR, onFatal);
      dash.on(ev.FRAGMENT_LOADING_COMPLETED, (e) => {
        if (!e.error) return;
        const url = e.request && e.request.url ? ' ' + e.request.url : '';
        nonFatal('dash.js fragment: ' + (e.error.code !== undefined ? e.error.code + ' ' : '') + (e.error.message || '') + url);
      });
      dash.on(ev.FRAGMENT_LOADING_ABANDONED, (e) => {
        nonFatal('dash.js fragment abandoned' + (e.request && e.request.url ? ' ' + e.request.url : ''));
      });
      dash.on(ev.QUALITY_CHANGE_RENDERED, (e) => {
        if (e.mediaType !== 'video' || !e.newRepresentation) return;
        const r = e.newRepresentation;
        setLevel(Number.isFinite(r.absoluteIndex) ? r.absoluteIndex : r.index, r.height);
      });
      dash.initialize(video, cfg.url, true);
    }
  } else {
    fatal('unknown engine ' + cfg.engine);
  }

  // The player's distance to the live edge; null for a VOD.
  function latency() {
    try {
      let l = NaN;
      if (hls) {
        const level = hls.levels[hls.currentLevel];
        if (level && level.details && level.details.live) l = hls.latency;
      } else if (dash && dash.isDynamic()) {
        l = dash.getCurrentLiveLatency();
      }
      return Number.isFinite(l) && l > 0 ? l : null;
    } catch (e) {
      return null;
    }
  }

  function endStall(end) {
    const d = Math.max(0, end - s.stallStart);
    if (d > 0) {
      s.stallCount++;
      s.longestStallMs = Math.max(s.longestStallMs, d);
      if (s.stalls.length >= MAX_STALLS) s.stalls.shift();
      s.stalls.push([s.stallStart, end]);
    }
    s.stallStart = -1;
  }

  // A stall: media time does not move although the video has started
  // playing and is neither paused nor ended. It begins at the last sample
  // that saw playback and ends when media time moves again (back-dated by
  // the media time played since), so it is accurate to about one sample.
  function sample() {
    const now = performance.now();
    const ct = video.currentTime;
    const wall = (now - s.lastWall) / 1000;
    const d = ct - s.lastTime;
    const active = !video.paused && !video.ended;
    // Playback moves media time forward, at most about as fast as the wall
    // clock (catch-up plays a little faster); a seek is not playback.
    const advanced = active && !video.seeking && d > 0 && d <= wall * 2 + 0.25;
    if (advanced) {
      if (!s.started) {
        s.started = true;
        s.startupMs = now - t0;
      }
      s.played += d;
      if (s.stallStart >= 0) {
        const rate = video.playbackRate > 0 ? video.playbackRate : 1;
        endStall(Math.max(s.stallStart, now - (d / rate) * 1000));
      }
      s.lastAdvance = now;
    } else if (s.started && active) {
      if (s.stallStart < 0) s.stallStart = s.lastAdvance;
    } else if (s.stallStart >= 0) {
      endStall(now); // paused or ended: the stall is over
    }
    s.lastTime = ct;
    s.lastWall = now;
    const l = latency();
    if (l !== null) s.latency = l;
    if (s.level < 0 && video.videoHeight > 0) s.height = video.videoHeight;
  }
  setInterval(sample, SAMPLE_MS);

  function bufferedEnd() {
    const b = video.buffered;
    const ct = video.currentTime;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= ct + 0.1 && ct <= b.end(i)) return b.end(i);
    }
    return 0;
  }

  // Whether the engine really runs in low-latency mode.
  function lowLatency() {
    try {
      if (hls) return hls.config.lowLatencyMode === true;
      if (dash) return dash.getSettings().streaming.liveCatchup.enabled === true;
    } catch (e) {
      // not ready
    }
    return false;
  }

  window.harness = {
    stats() {
      const now = performance.now();
      return {
        engine: s.engine,
        lowLatency: lowLatency(),
        clock: now,
        currentTime: video.currentTime,
        played: s.played,
        playing: s.started && !video.paused && !video.ended && now - s.lastAdvance < 500,
        paused: video.paused,
        ended: video.ended,
        readyState: video.readyState,
        bufferedEnd: bufferedEnd(),
        started: s.started,
        startupMs: s.startupMs,
        fatal: s.fatal,
        errors: s.errors,
        errorCount: s.errorCount,
        stalls: s.stallCount + (s.stallStart >= 0 ? 1 : 0),
        longestStallMs: Math.max(s.longestStallMs, s.stallStart >= 0 ? now - s.stallStart : 0),
        currentStallMs: s.stallStart >= 0 ? now - s.stallStart : 0,
        latency: s.latency,
        level: s.level,
        height: s.height,
        videoHeight: video.videoHeight,
        levelSwitches: s.levelSwitches,
      };
    },
    // The heights of the video levels (HLS variants, DASH video
    // representations) in the engine's order; [] until the manifest is in.
    levels() {
      try {
        if (hls) return hls.levels.map((l) => l.height || 0);
        if (dash) return dash.getRepresentationsByType('video').map((r) => r.height || 0);
      } catch (e) {
        // not ready
      }
      return [];
    },
    // Moves the play head, as a viewer dragging the seek bar would.
    seek(t) {
      if (!Number.isFinite(t)) return 'not a time: ' + t;
      video.currentTime = t;
      return '';
    },
    // The range the player can seek in (a live window, a DVR window, a
    // whole VOD), [] until known.
    seekable() {
      const r = video.seekable;
      return r.length ? [r.start(0), r.end(r.length - 1)] : [];
    },
    // Pins playback to one level, as a viewer picking a quality would:
    // the engine's ABR stops choosing and the switch happens at the next
    // segment boundary (no buffer flush). An error string, '' on success.
    switchTo(index) {
      try {
        if (hls) {
          if (index < 0 || index >= hls.levels.length) return 'no level ' + index;
          hls.nextLevel = index;
          return '';
        }
        if (dash) {
          const reps = dash.getRepresentationsByType('video');
          if (index < 0 || index >= reps.length) return 'no representation ' + index;
          dash.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
          dash.setRepresentationForTypeByIndex('video', index, false);
          return '';
        }
      } catch (e) {
        return String(e);
      }
      return 'no engine';
    },
    // The longest stall, or part of one, after page time `since`.
    longestStallSince(since) {
      const now = performance.now();
      let longest = 0;
      for (const [start, end] of s.stalls) {
        if (end > since) longest = Math.max(longest, end - Math.max(start, since));
      }
      if (s.stallStart >= 0) longest = Math.max(longest, now - Math.max(s.stallStart, since));
      return longest;
    },
  };
})();
