package relay

import (
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

func TestRandomAccess(t *testing.T) {
	for _, tc := range []struct {
		name    string
		codec   keyCodec
		payload []byte
		want    bool
	}{
		{"h264 IDR", keyH264, []byte{0x65, 0x88}, true},
		{"h264 non-IDR slice", keyH264, []byte{0x41, 0x9a}, false},
		{"h264 SPS alone", keyH264, []byte{0x67, 0x42}, false},
		{"h264 STAP-A SPS PPS IDR", keyH264, []byte{0x18, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce, 0, 2, 0x65, 0x88}, true},
		{"h264 STAP-A SPS PPS", keyH264, []byte{0x18, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce}, false},
		{"h264 STAP-A truncated", keyH264, []byte{0x18, 0, 9, 0x65}, false},
		{"h264 FU-A IDR start", keyH264, []byte{0x7c, 0x85, 0x88}, true},
		{"h264 FU-A IDR middle", keyH264, []byte{0x7c, 0x05, 0x88}, false},
		{"h264 FU-A non-IDR start", keyH264, []byte{0x7c, 0x81, 0x9a}, false},
		{"h264 empty", keyH264, nil, false},
		{"h265 IDR_W_RADL", keyH265, []byte{19 << 1, 1, 0xaf}, true},
		{"h265 CRA", keyH265, []byte{21 << 1, 1, 0xaf}, true},
		{"h265 TRAIL_R", keyH265, []byte{1 << 1, 1, 0xaf}, false},
		{"h265 AP VPS SPS PPS IDR", keyH265, []byte{48 << 1, 1, 0, 2, 32 << 1, 1, 0, 2, 33 << 1, 1, 0, 2, 34 << 1, 1, 0, 3, 19 << 1, 1, 0xaf}, true},
		{"h265 AP parameter sets", keyH265, []byte{48 << 1, 1, 0, 2, 32 << 1, 1, 0, 2, 33 << 1, 1}, false},
		{"h265 AP with DON", keyH265DON, []byte{48 << 1, 1, 0, 0, 0, 2, 32 << 1, 1, 0, 0, 3, 19 << 1, 1, 0xaf}, true},
		{"h265 FU IDR start", keyH265, []byte{49 << 1, 1, 0x80 | 19, 0xaf}, true},
		{"h265 FU IDR middle", keyH265, []byte{49 << 1, 1, 19, 0xaf}, false},
		{"h265 FU TRAIL start", keyH265, []byte{49 << 1, 1, 0x80 | 1, 0xaf}, false},
		{"no codec", keyNone, []byte{0x65}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, isRandomAccess(tc.codec, &rtp.Packet{Payload: tc.payload}))
		})
	}
}

func TestKeyFormat(t *testing.T) {
	media, pt, codec := keyFormat([][]format.Format{
		{&format.MPEG4Audio{PayloadTyp: 97}},
		{&format.H264{PayloadTyp: 96, PacketizationMode: 1}},
	})
	require.Equal(t, 1, media)
	require.EqualValues(t, 96, pt)
	require.Equal(t, keyH264, codec)

	media, _, codec = keyFormat([][]format.Format{{&format.H265{PayloadTyp: 96, MaxDONDiff: 2}}})
	require.Equal(t, 0, media)
	require.Equal(t, keyH265DON, codec)

	media, _, codec = keyFormat([][]format.Format{{&format.Opus{PayloadTyp: 111, ChannelCount: 2}}})
	require.Equal(t, -1, media)
	require.Equal(t, keyNone, codec)
}

// cacheFeed makes the packets of a synthetic H.264 + audio stream.
type cacheFeed struct {
	c   *gopCache
	now time.Time
	seq uint16
	ts  uint32
}

const (
	videoMedia = 0
	audioMedia = 1
)

func newCacheFeed(lim limits) *cacheFeed {
	return &cacheFeed{c: newGOPCache(lim, videoMedia, 96, keyH264, 3), now: time.Unix(1000, 0)}
}

// frame adds one video access unit in n packets (the first a separate SPS
// packet, as some encoders send it, for keyframes), then one audio packet,
// 40 ms later than the previous frame. It returns what add said for each
// video packet.
func (f *cacheFeed) frame(key bool, n int) (keyStarts []bool) {
	f.ts += 3600
	f.now = f.now.Add(40 * time.Millisecond)
	var payloads [][]byte
	if key {
		payloads = append(payloads, []byte{0x67, 0x42})
		payloads = append(payloads, []byte{0x7c, 0x85, 0x88})
	} else {
		payloads = append(payloads, []byte{0x7c, 0x81, 0x9a})
	}
	for len(payloads) < n {
		payloads = append(payloads, []byte{0x7c, 0x05, 0x00})
	}
	for i, p := range payloads {
		f.seq++
		pkt := &rtp.Packet{Header: rtp.Header{PayloadType: 96, SequenceNumber: f.seq, Timestamp: f.ts, Marker: i == len(payloads)-1}, Payload: p}
		keyStarts = append(keyStarts, f.c.add(&entry{media: videoMedia, pkt: pkt, size: 100, at: f.now}))
	}
	f.c.add(&entry{media: audioMedia, pkt: &rtp.Packet{Header: rtp.Header{PayloadType: 97, Timestamp: f.ts}, Payload: []byte{1}}, size: 10, at: f.now})
	return keyStarts
}

func TestGOPCache(t *testing.T) {
	f := newCacheFeed(limits{maxAge: 10 * time.Second, maxBytes: 1 << 20, maxPackets: 1000})
	c := f.c

	// Before the first keyframe: nothing to serve, and only the current
	// access unit is kept.
	for range 5 {
		f.frame(false, 3)
	}
	require.Nil(t, c.gop())
	require.Len(t, c.list, 4, "the last AU (3 packets) and the audio after it")

	// A keyframe: its AU starts with the SPS packet that came before the
	// packet showing it is an IDR.
	require.Equal(t, []bool{false, true, false}, f.frame(true, 3))
	gop := c.gop()
	require.Len(t, gop, 4, "the AU and the audio after it")
	require.Equal(t, byte(0x67), gop[0].pkt.Payload[0])
	for range 10 {
		f.frame(false, 3)
	}
	require.Len(t, c.gop(), 4+10*4)
	require.Equal(t, byte(0x67), c.gop()[0].pkt.Payload[0])
	require.Equal(t, 11*(3*100+10), c.bytes, "bytes: 100 a video packet, 10 an audio one")

	// The next keyframe replaces the GOP.
	f.frame(true, 2)
	require.Len(t, c.gop(), 3)
	require.Equal(t, 210, c.bytes)

	c.reset()
	require.Nil(t, c.gop())
	require.Empty(t, c.list)
}

func TestGOPCacheLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		lim  limits
	}{
		{"age", limits{maxAge: 500 * time.Millisecond, maxBytes: 1 << 20, maxPackets: 1000}},
		{"bytes", limits{maxAge: time.Minute, maxBytes: 2000, maxPackets: 1000}},
		{"packets", limits{maxAge: time.Minute, maxBytes: 1 << 20, maxPackets: 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCacheFeed(tc.lim)
			c := f.c
			f.frame(true, 3)
			require.NotNil(t, c.gop())
			valid := 0
			for i := range 49 {
				f.frame(false, 3)
				if gop := c.gop(); gop != nil {
					valid = i + 1
					require.LessOrEqual(t, c.bytes, tc.lim.maxBytes)
					require.LessOrEqual(t, len(gop), tc.lim.maxPackets)
					require.LessOrEqual(t, f.now.Sub(gop[0].at), tc.lim.maxAge)
				} else {
					require.LessOrEqual(t, len(c.list), 4, "only the current AU is kept")
				}
			}
			require.Less(t, valid, 49, "the GOP was cut")
			require.Equal(t, 1, c.overflows)
			// The next keyframe makes a cache again.
			f.frame(true, 3)
			require.NotNil(t, c.gop())
		})
	}
}

func TestGOPCacheLeadIn(t *testing.T) {
	f := newCacheFeed(limits{maxAge: 10 * time.Second, maxBytes: 1 << 20, maxPackets: 1000})
	c := f.c

	// The first keyframe of a session has nothing before it: a copying
	// client has no start there, a decoding one has.
	f.frame(true, 3)
	require.NotNil(t, c.gop())
	require.Nil(t, c.copyGOP())

	// Two AUs before the next keyframe are one too few for a lead-in of 3.
	f.frame(false, 2)
	f.frame(false, 2)
	f.frame(true, 3)
	require.Nil(t, c.copyGOP(), "the previous keyframe is within the lead-in")

	// After enough AUs, the lead-in is the last 3 whole AUs before the
	// keyframe with the audio between them, and the GOP follows it.
	for i := range 5 {
		f.frame(false, 1+i%2)
	}
	f.frame(true, 3)
	gop := c.gop()
	cp := c.copyGOP()
	require.Len(t, gop, 4)
	// frames of 1, 2, 1 packets before the keyframe, each with its audio
	// packet, but not the audio before the first of them.
	require.Len(t, cp, 2+3+2+len(gop))
	require.Equal(t, gop, cp[len(cp)-len(gop):])
	require.Equal(t, byte(0x7c), cp[0].pkt.Payload[0], "starts with an AU's first packet")
	require.Equal(t, byte(0x81), cp[0].pkt.Payload[1]&0x81, "an FU-A start")
	var ts []uint32
	for _, e := range cp[:len(cp)-len(gop)] {
		if e.media == videoMedia && e.pkt.Marker {
			ts = append(ts, e.pkt.Timestamp)
		}
	}
	require.Equal(t, []uint32{gop[0].pkt.Timestamp - 3*3600, gop[0].pkt.Timestamp - 2*3600, gop[0].pkt.Timestamp - 3600}, ts,
		"the three AUs right before the keyframe, in order")

	// The lead-in is the one of the newest keyframe, kept while the GOP
	// grows.
	for range 4 {
		f.frame(false, 2)
	}
	require.Equal(t, cp[:len(cp)-len(gop)], c.copyGOP()[:len(cp)-len(gop)])
	require.Len(t, c.copyGOP(), len(cp)+4*3)

	// A new upstream session starts from nothing.
	c.reset()
	f.frame(true, 2)
	require.Nil(t, c.copyGOP())
	require.Empty(t, c.lead.list[:c.lead.starts[len(c.lead.starts)-1]])

	// The buffer keeps no more than the lead-in and the current AU.
	for range 50 {
		f.frame(false, 2)
	}
	require.Len(t, c.lead.starts, 4)
	require.LessOrEqual(t, len(c.lead.list), 4*3)
}

func TestLeadAUs(t *testing.T) {
	// x264 320x180, -bf 2 (with B-pyramid) and -bf 0: their SPS say 2 and
	// 0 frames of reorder delay.
	bf2 := []byte{
		0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0x9f, 0x9f, 0x01, 0x10, 0x00, 0x00, 0x03,
		0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
	}
	bf0 := []byte{
		0x67, 0x64, 0x00, 0x0d, 0xac, 0xb4, 0x0a, 0x0c, 0xfc, 0xf8, 0x08, 0x80, 0x00, 0x00, 0x03,
		0x00, 0x80, 0x00, 0x00, 0x1e, 0x07, 0x8a, 0x15, 0x50,
	}
	require.Equal(t, 3, leadAUs(&format.H264{PayloadTyp: 96, SPS: bf2}))
	require.Equal(t, 1, leadAUs(&format.H264{PayloadTyp: 96, SPS: bf0}))
	require.Equal(t, 1+defaultReorder, leadAUs(&format.H264{PayloadTyp: 96}), "no SPS: the default delay")
	require.Equal(t, 0, leadAUs(&format.Opus{PayloadTyp: 111, ChannelCount: 2}))
}
