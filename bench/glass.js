// The latency row's player page: plays cfg.url with hls.js or dash.js in a
// muted <video> and, every cfg.everyMs, draws the picture on screen onto a
// canvas and reads the frame number the bench burns into the top band of
// every frame (barcode.go: cfg.bits blocks over the top 1/cfg.bandDiv of
// the picture, block X white when bit X is set). Each sample is
// [wall clock ms when that frame is on screen, frame number, blocks that
// were neither clearly black nor clearly white, the player's own latency
// estimate (s, or -1), the picture height, the playback rate].
(() => {
  'use strict';
  const cfg = window.glassConfig;
  const video = document.getElementById('video');
  const BITS = cfg.bits;
  const PX = 4; // canvas pixels per block: the middle two are read
  const canvas = document.createElement('canvas');
  canvas.width = BITS * PX;
  canvas.height = 4;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const st = { samples: [], fatal: [], errors: 0, lastError: '', rvfc: 0, interval: 0, startedAt: 0 };
  const MAX_SAMPLES = 4000;

  function fatal(msg) {
    if (st.fatal.length < 20) st.fatal.push(msg);
  }
  function nonFatal(msg) {
    st.errors++;
    st.lastError = msg;
  }
  video.addEventListener('error', () => {
    const e = video.error;
    fatal('video element: MediaError ' + (e ? e.code + ' ' + e.message : 'unknown'));
  });
  video.addEventListener('playing', () => {
    if (!st.startedAt) st.startedAt = Date.now();
  });

  let ownLatency = () => -1;
  if (cfg.engine === 'hls') {
    if (!window.Hls || !Hls.isSupported()) {
      fatal('hls.js not supported');
    } else {
      const conf = { lowLatencyMode: cfg.lowLatency };
      // hls.js plays at 1x whatever its distance to the target; catch-up
      // (a faster rate while too far behind) is opt-in.
      if (cfg.catchUp > 1) conf.maxLiveSyncPlaybackRate = cfg.catchUp;
      const hls = new Hls(conf);
      hls.on(Hls.Events.ERROR, (_, d) => {
        const msg = d.type + '/' + d.details;
        if (d.fatal) fatal(msg);
        else nonFatal(msg);
      });
      hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch((e) => nonFatal('play(): ' + e)));
      hls.attachMedia(video);
      hls.loadSource(cfg.url);
      ownLatency = () => {
        const l = hls.latency;
        return Number.isFinite(l) && l > 0 ? l : -1;
      };
      window.glassPlayer = hls;
    }
  } else {
    if (!window.dashjs) {
      fatal('dash.js not loaded');
    } else {
      const dash = dashjs.MediaPlayer().create();
      // dash.js's own low-latency mode: it turns it on from the MPD's
      // availabilityTimeComplete="false" and takes its target latency from
      // the MPD's ServiceDescription; catch-up is what keeps it there.
      const settings = { debug: { logLevel: dashjs.Debug.LOG_LEVEL_WARNING } };
      if (cfg.lowLatency) settings.streaming = { liveCatchup: { enabled: true } };
      dash.updateSettings(settings);
      const ev = dashjs.MediaPlayer.events;
      const onFatal = (e) => {
        const err = e.error || e;
        fatal('dash.js ' + e.type + ': ' + (err.code !== undefined ? err.code + ' ' : '') + (err.message || ''));
      };
      dash.on(ev.ERROR, onFatal);
      dash.on(ev.PLAYBACK_ERROR, onFatal);
      dash.initialize(video, cfg.url, true);
      ownLatency = () => {
        try {
          const l = dash.getCurrentLiveLatency();
          return Number.isFinite(l) && l > 0 ? l : -1;
        } catch (e) {
          return -1;
        }
      };
      window.glassPlayer = dash;
    }
  }

  // read decodes the barcode of the picture the video shows now.
  function read() {
    const w = video.videoWidth;
    const h = video.videoHeight;
    if (!w || !h) return null;
    ctx.drawImage(video, 0, 0, w, Math.max(1, Math.floor(h / cfg.bandDiv)), 0, 0, canvas.width, canvas.height);
    const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    let unclear = 0;
    for (let b = 0; b < BITS; b++) {
      let sum = 0;
      let cnt = 0;
      for (let x = b * PX + 1; x < (b + 1) * PX - 1; x++) {
        for (let y = 1; y < canvas.height - 1; y++) {
          const i = (y * canvas.width + x) * 4;
          sum += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
          cnt++;
        }
      }
      const v = sum / cnt;
      if (v >= 128) n |= 1 << b;
      if (v > 64 && v < 192) unclear++;
    }
    return [n, unclear];
  }

  function sample(wallMs) {
    const r = read();
    if (!r) return;
    if (st.samples.length >= MAX_SAMPLES) st.samples.shift();
    st.samples.push([wallMs, r[0], r[1], ownLatency(), video.videoHeight, video.playbackRate]);
  }

  // requestVideoFrameCallback runs as a frame is handed to the compositor:
  // drawing the video then draws that frame, and expectedDisplayTime is
  // when it is on screen. Sampled every cfg.everyMs.
  let lastShown = -1e12;
  let lastSampleWall = 0;
  if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
    const onFrame = (now, md) => {
      const shown = md && md.expectedDisplayTime ? md.expectedDisplayTime : now;
      if (shown - lastShown >= cfg.everyMs) {
        lastShown = shown;
        lastSampleWall = performance.timeOrigin + shown;
        st.rvfc++;
        sample(lastSampleWall);
      }
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }
  // Fallback, if frame callbacks do not come while the video plays: the
  // picture on screen now (on screen since at most one frame ago).
  setInterval(() => {
    const now = Date.now();
    if (video.paused || video.readyState < 2 || now - lastSampleWall < 2 * cfg.everyMs) return;
    lastSampleWall = now;
    st.interval++;
    sample(now);
  }, cfg.everyMs);

  window.glass = {
    state() {
      return {
        samples: st.samples,
        fatal: st.fatal,
        errors: st.errors,
        lastError: st.lastError,
        rvfc: st.rvfc,
        interval: st.interval,
        startedAt: st.startedAt,
        currentTime: video.currentTime,
      };
    },
  };
})();
