package relay

import (
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// The lead-in: what a client that copies the video gets before its first
// keyframe (see PullCopy).
//
// ffmpeg's RTSP demuxer hands H.264 and H.265 to a parser that joins NAL
// units into frames and takes each frame's timestamps from the input
// packet at the frame's byte position. RTP packets have no byte position
// (-1), and with it the parser (libavcodec/parser.c, ff_fetch_timestamp)
// finds no timestamps for the first frame it puts out: that frame has
// neither pts nor dts. ffmpeg picks a frame's dts from a window of recent
// pts as deep as the reorder delay, so the next (reorder delay) frames
// have a pts but no dts. A decoder does not mind (it times frames
// itself), nor does a copy of a stream without B-frames (with no reorder
// delay ffmpeg makes the missing timestamps up). But when a stream with
// B-frames starts with its keyframe, as every relayed stream does,
// ffmpeg's mp4 muxer gets a keyframe with no pts and the next frames with
// no dts, and fails ("pts has no value", then an assertion in movenc.c).
// Read from mediamtx, ffmpeg starts anywhere in a GOP, and the frames
// without timestamps are gone before the first keyframe (a copy starts at
// one), which is why reading mediamtx directly worked.
//
// So a copying client first gets the frames that came just before the
// keyframe: enough for the parser to lose one and the pts window to fill.
// ffmpeg drops them (a copy starts at a keyframe; a decoder shows nothing
// before one), and the keyframe arrives timed as it would mid-stream.

// defaultReorder is the reorder delay assumed when the SPS does not state
// one (an H.264 SPS without bitstream restriction): x264's with B-frames
// (and B-pyramid), OBS's default encoder.
const defaultReorder = 2

// maxReorder is the most a decoder can reorder (a 16-frame DPB).
const maxReorder = 16

// leadAUs is how many access units of f a copying client needs before its
// first keyframe: one the parser leaves untimed, then one per frame of
// reorder delay the source's SPS announces. 0 for formats that are not
// cut on keyframes.
func leadAUs(f format.Format) int {
	reorder := defaultReorder
	switch f := f.(type) {
	case *format.H264:
		sps, _ := f.SafeParams()
		var p h264.SPS
		if len(sps) > 0 && p.Unmarshal(sps) == nil && p.VUI != nil && p.VUI.BitstreamRestriction != nil {
			reorder = int(min(p.VUI.BitstreamRestriction.MaxNumReorderFrames, maxReorder))
		}
	case *format.H265:
		_, sps, _ := f.SafeParams()
		var p h265.SPS
		if len(sps) > 0 && p.Unmarshal(sps) == nil && len(p.MaxNumReorderPics) > 0 {
			reorder = int(min(p.MaxNumReorderPics[len(p.MaxNumReorderPics)-1], maxReorder))
		}
	default:
		return 0
	}
	return 1 + reorder
}

// leadBuffer keeps, in arrival order and across all medias, every packet
// since the start of the key format's last n complete AUs before the
// current one, and the current one so far.
type leadBuffer struct {
	n      int
	list   []*entry
	starts []int  // index in list of each kept AU's first packet; the last is the current AU's
	keys   []bool // whether each kept AU is a random access point
}

// add appends e; auStart says e starts a new AU of the key format.
func (l *leadBuffer) add(e *entry, auStart bool) {
	if l.n == 0 {
		return
	}
	if auStart {
		l.starts = append(l.starts, len(l.list))
		l.keys = append(l.keys, false)
		if len(l.starts) > l.n+1 {
			cut := l.starts[1]
			// Reslicing from the front: append moves the live part to a
			// new array once this one is full, so the dropped packets are
			// not held for long.
			l.list = l.list[cut:]
			l.starts, l.keys = l.starts[1:], l.keys[1:]
			for i := range l.starts {
				l.starts[i] -= cut
			}
		}
	}
	if len(l.starts) == 0 {
		return // before the first AU: nothing a lead-in could use
	}
	l.list = append(l.list, e)
}

// markKey notes that the current AU is a random access point.
func (l *leadBuffer) markKey() {
	if len(l.keys) > 0 {
		l.keys[len(l.keys)-1] = true
	}
}

// before returns a copy of what came before the current AU: the last n
// complete AUs and every packet between them. It is nil when fewer than n
// AUs came since the upstream session started or since the previous
// random access point (a lead-in must not start a stream with a keyframe
// either).
func (l *leadBuffer) before() []*entry {
	last := len(l.starts) - 1
	if l.n == 0 || last < l.n {
		return nil
	}
	for _, k := range l.keys[last-l.n : last] {
		if k {
			return nil
		}
	}
	out := make([]*entry, l.starts[last]-l.starts[last-l.n])
	copy(out, l.list[l.starts[last-l.n]:l.starts[last]])
	return out
}

func (l *leadBuffer) reset() {
	l.list, l.starts, l.keys = nil, nil, nil
}
