package packager

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// MPEG-TS (ISO/IEC 13818-1) as ffmpeg's mpegts muxer writes it for the
// `segment_format: ts` profiles: one program with an H.264 stream and, when
// the source has audio, an AAC (ADTS) stream, each PES written as one run
// of 188-byte packets. SplitTS cuts that byte stream at the video
// keyframes; every piece starts with the program tables, so each one (and
// so each segment made of them) can be decoded on its own, which is what
// HLS asks of a TS segment.

const (
	tsPacketSize = 188
	tsSyncByte   = 0x47
	tsNullPID    = 0x1fff
	// tsMaxLost is how many bytes SplitTS skips looking for the sync byte
	// before it gives up: ffmpeg on a pipe never loses it, so this is a
	// broken producer, not a glitch to ride out.
	tsMaxLost = 64 << 10
	// maxTSChunk bounds one keyframe-to-keyframe run, like maxBoxSize bounds
	// a box: a GOP that large is a stream without keyframes.
	maxTSChunk = maxBoxSize
	// pesScanMax is how much of a video PES is kept to look for its NAL
	// units: the SPS and the first slice come within the first few kB.
	pesScanMax = 64 << 10
	// ptsHz is the clock of PTS and DTS.
	ptsHz = 90000
	// ptsWrap is where the 33-bit PTS wraps around (about 26.5 hours).
	ptsWrap = 1 << 33
	// fallbackFrameTicks is the frame duration assumed for the last chunk of
	// a stream whose frame rate could not be measured (30 fps).
	fallbackFrameTicks = ptsHz / 30
)

// PMT stream types this splitter knows.
const (
	streamTypeH264 = 0x1b
	streamTypeAAC  = 0x0f // ADTS
)

// H.264 NAL unit types.
const (
	nalIDR = 5
	nalSPS = 7
)

// SplitTS reads an MPEG-TS stream of one program (H.264 video, optionally
// AAC audio) and cuts it at every video keyframe: a video PES whose first
// packet has the random_access_indicator set, or whose access unit holds an
// IDR slice. It calls onInfo once, before the first chunk, with the video
// track's description (Kind Video, Timescale 90000, the RFC 6381 codecs of
// the whole program, e.g. "avc1.64001f,mp4a.40.2", and the picture size
// from the SPS). Then it calls onChunk with every run of packets from one
// keyframe PES to the next, preceded by the latest PAT and PMT packets:
// start is the keyframe's PTS in seconds (unwrapped across the 33-bit
// wrap, so it keeps growing on a long stream), duration the next keyframe's
// PTS less this one, sync always true. A chunk is complete, so it goes out
// when the next keyframe has been read; at the end of the stream the last
// one goes out with its duration reaching one frame past its last picture.
//
// Packets before the first keyframe are dropped, as are null packets. A
// lost sync byte is searched for again (up to tsMaxLost bytes). SplitTS
// returns nil at a clean end of stream, and an error for a stream that
// ends inside a packet (after the last chunk went out), loses sync for
// good, or has no H.264 stream in its PMT. The slices given to onChunk are
// the callee's to keep.
func SplitTS(r io.Reader, onInfo func(InitInfo) error, onChunk func(data []byte, start, duration float64, sync bool) error) error {
	s := &tsSplitter{onInfo: onInfo, onChunk: onChunk, pmtPID: -1, videoPID: -1, audioPID: -1}
	br := bufio.NewReaderSize(r, 64<<10)
	lost := 0
	for {
		b, err := br.Peek(tsPacketSize)
		if len(b) < tsPacketSize {
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("mpegts stream: %w", err)
			}
			if ferr := s.finish(); ferr != nil {
				return ferr
			}
			if lost > 0 {
				return fmt.Errorf("mpegts stream: no sync byte in its last %d bytes", lost+len(b))
			}
			if len(b) > 0 {
				return fmt.Errorf("mpegts stream ends inside a packet (%d of %d bytes): %w", len(b), tsPacketSize, io.ErrUnexpectedEOF)
			}
			return nil
		}
		if b[0] != tsSyncByte || (lost > 0 && !nextIsSync(br)) {
			// Out of sync: move on a byte at a time. After a loss, a sync
			// byte counts only if the next packet starts with one too.
			_, _ = br.Discard(1)
			lost++
			if lost > tsMaxLost {
				return fmt.Errorf("mpegts stream: no sync byte in %d bytes", lost)
			}
			continue
		}
		lost = 0
		// packet copies what it keeps: b is the reader's until Discard.
		if err := s.packet(b); err != nil {
			return err
		}
		_, _ = br.Discard(tsPacketSize)
	}
}

// nextIsSync tells whether the packet after the one at the reader's
// position starts with a sync byte (or the stream ends before it).
func nextIsSync(br *bufio.Reader) bool {
	b, _ := br.Peek(2 * tsPacketSize)
	return len(b) < 2*tsPacketSize || b[tsPacketSize] == tsSyncByte
}

type tsSplitter struct {
	onInfo  func(InitInfo) error
	onChunk func(data []byte, start, duration float64, sync bool) error

	// The latest program tables, as whole packets, and what they say.
	pat, pmt           []byte
	pmtPID             int
	videoPID, audioPID int

	// cur is the chunk being gathered when open (it starts with PAT, PMT
	// and a keyframe PES); before the first keyframe, the packets from the
	// video PES being read on.
	cur  []byte
	open bool
	// described: onInfo was called.
	described bool
	// Timing of the open chunk, in unwrapped 90 kHz ticks.
	start  int64
	pts    []int64 // of its pictures
	frame  int64   // last measured frame duration
	pes    tsPES
	pesBuf []byte // the last PES's data, for the next one to reuse
	unwrap ptsUnwrapper
}

// tsPES is the video PES being read.
type tsPES struct {
	active bool
	off    int  // where its first packet is in cur
	rai    bool // random_access_indicator on its first packet
	data   []byte
}

func (s *tsSplitter) packet(p []byte) error {
	if p[1]&0x80 != 0 {
		return nil // transport_error_indicator: the packet is damaged
	}
	pusi := p[1]&0x40 != 0
	pid := int(p[1]&0x1f)<<8 | int(p[2])
	if pid == tsNullPID {
		return nil
	}
	afc := p[3] >> 4 & 3
	off, rai := 4, false
	if afc&2 != 0 {
		alen := int(p[4])
		if alen > 0 {
			rai = p[5]&0x40 != 0
		}
		off = 5 + alen
		if off > tsPacketSize {
			return nil // an adaptation field longer than the packet
		}
	}
	var payload []byte
	if afc&1 != 0 {
		payload = p[off:]
	}
	switch {
	case pid == 0 && pusi:
		s.parsePAT(p, payload)
	case pid == s.pmtPID && pusi:
		if err := s.parsePMT(p, payload); err != nil {
			return err
		}
	}
	if pid == s.videoPID && pusi {
		if err := s.endPES(); err != nil {
			return err
		}
		if !s.open {
			s.cur = s.cur[:0] // nothing before a keyframe is kept
		}
		s.pes = tsPES{active: true, off: len(s.cur), rai: rai, data: s.pesBuf[:0]}
	}
	if pid == s.videoPID && s.pes.active && len(s.pes.data) < pesScanMax {
		s.pes.data = append(s.pes.data, payload...)
	}
	if !s.open && !s.pes.active {
		return nil
	}
	if len(s.cur)+tsPacketSize > maxTSChunk {
		return fmt.Errorf("mpegts stream: no video keyframe in %d MB", maxTSChunk>>20)
	}
	s.cur = append(s.cur, p...)
	return nil
}

// psiSection finds the section a PSI packet's payload starts (after the
// pointer field) and checks its CRC; nil if it is not one of tableID that
// fits in the packet.
func psiSection(payload []byte, tableID byte) []byte {
	if len(payload) < 1 {
		return nil
	}
	ptr := int(payload[0])
	if 1+ptr+3 > len(payload) {
		return nil
	}
	sec := payload[1+ptr:]
	if sec[0] != tableID {
		return nil
	}
	n := 3 + int(binary.BigEndian.Uint16(sec[1:3])&0x0fff)
	// Sections spanning packets never come from ffmpeg's one program.
	if n < 12 || n > len(sec) || crc32MPEG(sec[:n]) != 0 {
		return nil
	}
	return sec[:n]
}

func (s *tsSplitter) parsePAT(p, payload []byte) {
	sec := psiSection(payload, 0x00)
	if sec == nil {
		return
	}
	for i := 8; i+4 <= len(sec)-4; i += 4 {
		program := binary.BigEndian.Uint16(sec[i:])
		if program == 0 {
			continue // the network PID
		}
		s.pmtPID = int(binary.BigEndian.Uint16(sec[i+2:]) & 0x1fff)
		s.pat = slices.Clone(p)
		return
	}
}

func (s *tsSplitter) parsePMT(p, payload []byte) error {
	sec := psiSection(payload, 0x02)
	if sec == nil {
		return nil
	}
	video, audio := -1, -1
	i := 12 + int(binary.BigEndian.Uint16(sec[10:12])&0x0fff)
	for i+5 <= len(sec)-4 {
		typ := sec[i]
		pid := int(binary.BigEndian.Uint16(sec[i+1:]) & 0x1fff)
		switch {
		case typ == streamTypeH264 && video < 0:
			video = pid
		case typ == streamTypeAAC && audio < 0:
			audio = pid
		}
		i += 5 + int(binary.BigEndian.Uint16(sec[i+3:])&0x0fff)
	}
	if video < 0 {
		return errors.New("mpegts stream: the PMT has no H.264 video stream")
	}
	if video != s.videoPID {
		// A new video PID: what was read of the old one's PES is done.
		if err := s.endPES(); err != nil {
			return err
		}
		s.pes = tsPES{}
	}
	s.videoPID, s.audioPID = video, audio
	s.pmt = slices.Clone(p)
	return nil
}

// endPES looks at the video PES read so far, now complete: a keyframe
// closes the open chunk and starts the next.
func (s *tsSplitter) endPES() error {
	pes := s.pes
	s.pes = tsPES{}
	if !pes.active {
		return nil
	}
	defer func() { s.pesBuf = pes.data[:0] }()
	raw, es, ok := parsePES(pes.data)
	if !ok {
		return nil // no PTS: nothing to time a cut by
	}
	pts := s.unwrap.next(raw)
	nals := nalUnits(es)
	key := pes.rai
	var sps []byte
	for _, n := range nals {
		switch n[0] & 0x1f {
		case nalIDR:
			key = true
		case nalSPS:
			if sps == nil {
				sps = n
			}
		}
	}
	if s.open && key && pts <= s.start {
		key = false // a keyframe that does not move time on cannot end a chunk
	}
	if !key {
		if s.open {
			s.pts = append(s.pts, pts)
		}
		return nil
	}
	if !s.described {
		// The playlists need the codec and size: a keyframe without an SPS
		// cannot start the stream.
		info, err := s.info(sps)
		if err != nil {
			return nil
		}
		if err := s.onInfo(info); err != nil {
			return err
		}
		s.described = true
	}
	rest := s.cur[pes.off:]
	next := make([]byte, 0, len(s.pat)+len(s.pmt)+len(rest))
	next = append(append(append(next, s.pat...), s.pmt...), rest...)
	if s.open {
		s.measureFrame()
		if err := s.onChunk(s.cur[:pes.off], ticksToSeconds(s.start), ticksToSeconds(pts-s.start), true); err != nil {
			return err
		}
	}
	s.cur, s.open, s.start, s.pts = next, true, pts, append(s.pts[:0], pts)
	return nil
}

// finish sends the last chunk at the end of the stream.
func (s *tsSplitter) finish() error {
	if err := s.endPES(); err != nil {
		return err
	}
	if !s.open {
		return nil
	}
	s.measureFrame()
	last := slices.Max(s.pts)
	frame := s.frame
	if frame <= 0 {
		frame = fallbackFrameTicks
	}
	data := s.cur
	s.cur, s.open = nil, false
	return s.onChunk(data, ticksToSeconds(s.start), ticksToSeconds(last+frame-s.start), true)
}

// measureFrame takes the frame duration from the open chunk's pictures:
// the smallest step between their presentation times.
func (s *tsSplitter) measureFrame() {
	if len(s.pts) < 2 {
		return
	}
	sorted := slices.Sorted(slices.Values(s.pts))
	var step int64
	for i := 1; i < len(sorted); i++ {
		if d := sorted[i] - sorted[i-1]; d > 0 && (step == 0 || d < step) {
			step = d
		}
	}
	if step > 0 {
		s.frame = step
	}
}

func ticksToSeconds(t int64) float64 { return float64(t) / ptsHz }

// info describes the video track from its SPS.
func (s *tsSplitter) info(sps []byte) (InitInfo, error) {
	if sps == nil {
		return InitInfo{}, errors.New("no SPS")
	}
	v, err := parseSPS(sps)
	if err != nil {
		return InitInfo{}, err
	}
	codec := fmt.Sprintf("avc1.%02x%02x%02x", v.profile, v.constraints, v.level)
	if s.audioPID >= 0 {
		// The transcoder always encodes AAC-LC.
		codec += ",mp4a.40.2"
	}
	return InitInfo{Kind: Video, Timescale: ptsHz, Codec: codec, Width: v.width, Height: v.height}, nil
}

// ptsUnwrapper turns 33-bit PTS values into a count that goes on past the
// wrap: each value is taken as the nearest one (forward or back, since
// B-frames come out of order) to the one before.
type ptsUnwrapper struct {
	started bool
	lastRaw int64
	last    int64
}

func (u *ptsUnwrapper) next(raw int64) int64 {
	if !u.started {
		u.started, u.lastRaw, u.last = true, raw, raw
		return raw
	}
	d := (raw - u.lastRaw) & (ptsWrap - 1)
	if d >= ptsWrap/2 {
		d -= ptsWrap
	}
	u.lastRaw = raw
	u.last += d
	return u.last
}

// parsePES reads a PES header: the PTS and the elementary stream bytes
// after the header (as many as were kept).
func parsePES(b []byte) (pts int64, es []byte, ok bool) {
	if len(b) < 9 || b[0] != 0 || b[1] != 0 || b[2] != 1 || b[6]&0xc0 != 0x80 {
		return 0, nil, false
	}
	end := 9 + int(b[8])
	if b[7]&0x80 == 0 || end > len(b) || b[8] < 5 {
		return 0, nil, false
	}
	p := b[9:14]
	pts = int64(p[0]>>1&7)<<30 | int64(p[1])<<22 | int64(p[2]>>1)<<15 | int64(p[3])<<7 | int64(p[4]>>1)
	return pts, b[end:], true
}

// nalUnits splits an Annex B byte stream at its start codes; each NAL unit
// starts with its header byte.
func nalUnits(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); {
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			i++
			continue
		}
		if start >= 0 {
			out = appendNAL(out, b[start:i])
		}
		i += 3
		start = i
	}
	if start >= 0 && start < len(b) {
		out = appendNAL(out, b[start:])
	}
	return out
}

// appendNAL adds a NAL unit without the zero bytes that belong to the next
// start code (00 00 00 01) or trail it.
func appendNAL(out [][]byte, n []byte) [][]byte {
	for len(n) > 0 && n[len(n)-1] == 0 {
		n = n[:len(n)-1]
	}
	if len(n) == 0 {
		return out
	}
	return append(out, n)
}

// spsInfo is what the playlists need from an H.264 SPS.
type spsInfo struct {
	profile, constraints, level byte
	width, height               int
}

// parseSPS reads an H.264 sequence parameter set (ITU-T H.264 §7.3.2.1.1),
// NAL header byte included, as far as the cropped picture size.
func parseSPS(nal []byte) (spsInfo, error) {
	if len(nal) < 4 || nal[0]&0x1f != nalSPS {
		return spsInfo{}, errors.New("sps: not an SPS")
	}
	v := spsInfo{profile: nal[1], constraints: nal[2], level: nal[3]}
	r := bitReader{b: unescapeRBSP(nal[4:])}
	r.ue() // seq_parameter_set_id
	chromaFormat := uint32(1)
	separatePlanes := false
	switch v.profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chromaFormat = r.ue()
		if chromaFormat > 3 {
			return spsInfo{}, fmt.Errorf("sps: chroma_format_idc %d", chromaFormat)
		}
		if chromaFormat == 3 {
			separatePlanes = r.bit() == 1
		}
		r.ue()                        // bit_depth_luma_minus8
		r.ue()                        // bit_depth_chroma_minus8
		r.bit()                       // qpprime_y_zero_transform_bypass_flag
		scalingMatrix := r.bit() == 1 // seq_scaling_matrix_present_flag
		if scalingMatrix {
			lists := 8
			if chromaFormat == 3 {
				lists = 12
			}
			for i := range lists {
				if r.bit() == 0 {
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				last, next := int32(8), int32(8)
				for range size {
					if next != 0 {
						next = (last + r.se() + 256) % 256
					}
					if next != 0 {
						last = next
					}
				}
			}
		}
	}
	r.ue()            // log2_max_frame_num_minus4
	pocType := r.ue() // pic_order_cnt_type
	switch pocType {
	case 0:
		r.ue() // log2_max_pic_order_cnt_lsb_minus4
	case 1:
		r.bit() // delta_pic_order_always_zero_flag
		r.se()  // offset_for_non_ref_pic
		r.se()  // offset_for_top_to_bottom_field
		n := r.ue()
		if n > 255 {
			return spsInfo{}, fmt.Errorf("sps: %d reference frames in the POC cycle", n)
		}
		for range n {
			r.se()
		}
	}
	r.ue()  // max_num_ref_frames
	r.bit() // gaps_in_frame_num_value_allowed_flag
	wMbs := int(r.ue()) + 1
	hUnits := int(r.ue()) + 1
	frameMbsOnly := int(r.bit())
	if frameMbsOnly == 0 {
		r.bit() // mb_adaptive_frame_field_flag
	}
	r.bit() // direct_8x8_inference_flag
	var left, right, top, bottom int
	if r.bit() == 1 {
		left, right, top, bottom = int(r.ue()), int(r.ue()), int(r.ue()), int(r.ue())
	}
	if r.err != nil {
		return spsInfo{}, fmt.Errorf("sps: %w", r.err)
	}
	if wMbs > 1<<10 || hUnits > 1<<10 {
		return spsInfo{}, fmt.Errorf("sps: %dx%d macroblocks", wMbs, hUnits)
	}
	// Crop units (Table 6-1 and equations 7-19 to 7-22).
	unitX, unitY := 1, 2-frameMbsOnly
	if !separatePlanes && chromaFormat != 0 {
		subW, subH := 2, 2
		switch chromaFormat {
		case 2:
			subH = 1
		case 3:
			subW, subH = 1, 1
		}
		unitX, unitY = subW, subH*(2-frameMbsOnly)
	}
	v.width = wMbs*16 - (left+right)*unitX
	v.height = (2-frameMbsOnly)*hUnits*16 - (top+bottom)*unitY
	if v.width <= 0 || v.height <= 0 {
		return spsInfo{}, fmt.Errorf("sps: cropped to %dx%d", v.width, v.height)
	}
	return v, nil
}

// unescapeRBSP removes the emulation prevention bytes (00 00 03 -> 00 00).
func unescapeRBSP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

// bitReader reads an RBSP bit by bit; reading past the end sets err and
// gives zeros.
type bitReader struct {
	b   []byte
	pos int // in bits
	err error
}

var errShortSPS = errors.New("ends early")

func (r *bitReader) bit() uint32 {
	if r.pos >= 8*len(r.b) {
		r.err = errShortSPS
		return 0
	}
	v := uint32(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v
}

// ue reads an unsigned exp-Golomb code (at most 32 bits of value).
func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.bit() == 0 {
		if r.err != nil {
			return 0
		}
		zeros++
		if zeros > 31 {
			r.err = errors.New("exp-Golomb code too long")
			return 0
		}
	}
	var v uint32
	for range zeros {
		v = v<<1 | r.bit()
	}
	return (1<<zeros - 1) + v
}

// se reads a signed exp-Golomb code.
func (r *bitReader) se() int32 {
	k := r.ue()
	if k%2 == 1 {
		return int32((k + 1) / 2)
	}
	return -int32(k / 2)
}

// crc32MPEG is the CRC of PSI sections (CRC-32/MPEG-2): over a whole
// section, its CRC_32 field included, it is zero.
func crc32MPEG(b []byte) uint32 {
	crc := uint32(0xffffffff)
	for _, c := range b {
		crc ^= uint32(c) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
