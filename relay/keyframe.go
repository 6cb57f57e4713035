package relay

import (
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// keyCodec says how to find random access points in the RTP payload of the
// one video format the cache is cut on. Only the first NAL unit header of
// each packet (or each unit of an aggregation packet) is read: whole access
// units are never reassembled.
type keyCodec int

const (
	keyNone keyCodec = iota
	keyH264
	keyH265
	keyH265DON // H.265 with decoding order numbers in AP/FU packets (sprop-max-don-diff > 0)
)

// keyFormat picks the format the cache is cut on: the first H.264 or H.265
// format of the first video media that has one. Other video codecs are
// relayed without a cache (a client starts with the next packet).
func keyFormat(medias [][]format.Format) (media int, pt uint8, codec keyCodec) {
	for i, fs := range medias {
		for _, f := range fs {
			switch f := f.(type) {
			case *format.H264:
				return i, f.PayloadType(), keyH264
			case *format.H265:
				if f.MaxDONDiff > 0 {
					return i, f.PayloadType(), keyH265DON
				}
				return i, f.PayloadType(), keyH265
			}
		}
	}
	return -1, 0, keyNone
}

// isRandomAccess reports whether the RTP packet carries (the start of) an
// H.264 IDR slice or an H.265 IRAP picture.
func isRandomAccess(c keyCodec, pkt *rtp.Packet) bool {
	p := pkt.Payload
	switch c {
	case keyH264:
		return h264RandomAccess(p)
	case keyH265, keyH265DON:
		return h265RandomAccess(p, c == keyH265DON)
	}
	return false
}

const (
	h264IDR   = 5
	h264STAPA = 24
	h264FUA   = 28
)

func h264RandomAccess(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case h264IDR:
		return true
	case h264STAPA:
		// 16-bit size, NAL unit, repeated (RFC 6184 5.7.1).
		for pos := 1; pos+2 < len(p); {
			size := int(p[pos])<<8 | int(p[pos+1])
			pos += 2
			if size == 0 || pos+size > len(p) {
				return false
			}
			if p[pos]&0x1f == h264IDR {
				return true
			}
			pos += size
		}
	case h264FUA:
		// FU header: S bit and the fragmented unit's type.
		return len(p) >= 2 && p[1]&0x80 != 0 && p[1]&0x1f == h264IDR
	}
	return false
}

const (
	h265AP = 48
	h265FU = 49
)

// h265IRAP: BLA, IDR and CRA pictures (types 16-21; 22-23 are reserved
// IRAP types).
func h265IRAP(t byte) bool { return t >= 16 && t <= 23 }

func h265RandomAccess(p []byte, don bool) bool {
	if len(p) < 2 {
		return false
	}
	switch t := (p[0] >> 1) & 0x3f; {
	case h265IRAP(t):
		return true
	case t == h265AP:
		// RFC 7798 4.4.2: [DONL] size NAL, then [DOND] size NAL, ...
		pos := 2
		if don {
			pos += 2
		}
		for pos+2 < len(p) {
			size := int(p[pos])<<8 | int(p[pos+1])
			pos += 2
			if size < 2 || pos+size > len(p) {
				return false
			}
			if h265IRAP((p[pos] >> 1) & 0x3f) {
				return true
			}
			pos += size
			if don {
				pos++
			}
		}
	case t == h265FU:
		return len(p) >= 3 && p[2]&0x80 != 0 && h265IRAP(p[2]&0x3f)
	}
	return false
}
