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
	return &cacheFeed{c: newGOPCache(lim, videoMedia, 96, keyH264), now: time.Unix(1000, 0)}
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
