// The WHIP publisher of the tests: Chromium's fake camera and microphone
// sent over WebRTC to a WHIP endpoint (RFC 9725): one SDP offer POSTed with
// the stream key as bearer token, the SDP answer back, no trickle ICE.
// window.whip says how far it got, for the Go side to poll.
'use strict';
(function () {
  const cfg = window.whipConfig;
  const whip = window.whip = {
    state: 'starting', error: '', ice: 'new', connection: 'new',
    videoCodec: '', audioCodec: '', location: '', answeredMs: 0, connectedMs: 0, postedAt: 0, postedMs: 0,
  };
  const t0 = performance.now();
  const fail = (e) => { whip.state = 'failed'; whip.error = String(e && e.message || e); console.error('whip:', whip.error); };

  // preferCodec puts the codecs of mime first in a transceiver's list, so
  // the answer picks it when both sides have it.
  function preferCodec(tr, kind, mime) {
    const caps = RTCRtpSender.getCapabilities(kind);
    if (!caps || !tr.setCodecPreferences) return;
    const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === mime);
    if (first.length === 0) return;
    tr.setCodecPreferences(first.concat(caps.codecs.filter((c) => c.mimeType.toLowerCase() !== mime)));
  }

  async function run() {
    const media = await navigator.mediaDevices.getUserMedia({
      video: { width: cfg.width, height: cfg.height, frameRate: cfg.fps },
      audio: true,
    });
    const pc = window.whipPC = new RTCPeerConnection({ iceServers: [] });
    pc.oniceconnectionstatechange = () => { whip.ice = pc.iceConnectionState; };
    pc.onconnectionstatechange = () => {
      whip.connection = pc.connectionState;
      if (pc.connectionState === 'connected' && !whip.connectedMs) whip.connectedMs = performance.now() - t0;
      if (pc.connectionState === 'failed') fail('peer connection failed');
    };
    for (const track of media.getTracks()) {
      const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
      // H.264 is what OBS sends and what the node's relay caches GOPs of;
      // without an H.264 encoder Chromium's first choice (VP8) is kept.
      if (track.kind === 'video') preferCodec(tr, 'video', 'video/h264');
    }
    await pc.setLocalDescription(await pc.createOffer());
    // The host candidates in the offer (no trickle here). Without STUN
    // servers they come within milliseconds, but Chromium may keep the
    // gathering open for a while: half a second is plenty.
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
      setTimeout(resolve, 500);
    });
    const headers = { 'Content-Type': 'application/sdp' };
    if (cfg.token) headers.Authorization = 'Bearer ' + cfg.token;
    whip.postedAt = Date.now();
    whip.postedMs = performance.now() - t0;
    const resp = await fetch(cfg.url, { method: 'POST', headers, body: pc.localDescription.sdp });
    const body = await resp.text();
    if (resp.status !== 201) throw new Error('WHIP POST answered ' + resp.status + ': ' + body);
    whip.location = resp.headers.get('Location') || '';
    await pc.setRemoteDescription({ type: 'answer', sdp: body });
    whip.answeredMs = performance.now() - t0;
    for (const tr of pc.getTransceivers()) {
      const p = tr.sender.getParameters();
      const c = p.codecs && p.codecs[0];
      if (c && tr.sender.track) whip[tr.sender.track.kind + 'Codec'] = c.mimeType;
    }
    whip.state = 'answered';
  }
  run().catch(fail);

  // recvOffer makes a WHEP (recvonly) offer with its host candidates, for
  // the Go side to post itself.
  window.recvOffer = async () => {
    const pc = new RTCPeerConnection({ iceServers: [] });
    try {
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
        setTimeout(resolve, 500);
      });
      return pc.localDescription.sdp;
    } finally {
      pc.close();
    }
  };

  // offerAnswer POSTs a fresh offer to a WHIP or WHEP endpoint (sendonly
  // with the fake camera's tracks for WHIP, recvonly for WHEP, as a browser
  // player would) and resolves to the endpoint's HTTP status and body.
  window.offerAnswer = async (url, token, publish) => {
    const pc = new RTCPeerConnection({ iceServers: [] });
    try {
      if (publish) {
        const media = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
        for (const track of media.getTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
      } else {
        pc.addTransceiver('video', { direction: 'recvonly' });
        pc.addTransceiver('audio', { direction: 'recvonly' });
      }
      await pc.setLocalDescription(await pc.createOffer());
      const headers = { 'Content-Type': 'application/sdp' };
      if (token) headers.Authorization = 'Bearer ' + token;
      const resp = await fetch(url, { method: 'POST', headers, body: pc.localDescription.sdp });
      return { status: resp.status, body: await resp.text() };
    } finally {
      pc.close();
    }
  };
})();
