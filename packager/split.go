package packager

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxBoxSize bounds one top-level box read from a transcoder: a 2 s segment
// of a high-bitrate rung is a few MB; anything near this is a broken stream.
const maxBoxSize = 64 << 20

// Split reads a fragmented MP4 stream (ffmpeg's `-f mp4 -movflags
// empty_moov+default_base_moof+frag_keyframe` output) and calls onInit once
// with ftyp+moov, then onFragment with every moof+mdat pair (and any
// styp/prft/sidx boxes before it). It returns nil at a clean end of stream.
func Split(r io.Reader, onInit func(init []byte) error, onFragment func(frag []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		pending []byte // boxes read since the last emit
		// pendingTypes names them, four bytes each
		pendingTypes []byte
		inited       bool
		hdr          [16]byte
	)
	for {
		if _, err := io.ReadFull(br, hdr[:8]); err != nil {
			// A clean end between boxes: whatever trails the last fragment
			// (ffmpeg's mfra index) is not media. A moof without its mdat
			// is a fragment cut short.
			if errors.Is(err, io.EOF) && !bytes.Contains(pendingTypes, []byte("moof")) {
				return nil
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("fmp4 stream ends inside a box: %w", io.ErrUnexpectedEOF)
			}
			return err
		}
		n := 8
		if hdr[0] == 0 && hdr[1] == 0 && hdr[2] == 0 && hdr[3] == 1 {
			if _, err := io.ReadFull(br, hdr[8:16]); err != nil {
				return fmt.Errorf("fmp4 stream: %w", err)
			}
			n = 16
		}
		h, err := parseBoxHeader(hdr[:n])
		if err != nil {
			return fmt.Errorf("fmp4 stream: %w", err)
		}
		if h.size > maxBoxSize {
			return fmt.Errorf("fmp4 stream: %q box of %d bytes", h.typ, h.size)
		}
		pendingTypes = append(pendingTypes, h.typ...)
		start := len(pending)
		pending = append(pending, hdr[:n]...)
		pending = append(pending, make([]byte, int(h.size)-n)...)
		if _, err := io.ReadFull(br, pending[start+n:]); err != nil {
			return fmt.Errorf("fmp4 stream: %q box: %w", h.typ, err)
		}
		switch h.typ {
		case "moov":
			if inited {
				return errors.New("fmp4 stream: a second moov")
			}
			inited = true
			if err := onInit(pending); err != nil {
				return err
			}
			pending, pendingTypes = nil, nil
		case "mdat":
			if !inited {
				return errors.New("fmp4 stream: media before the moov")
			}
			if err := onFragment(pending); err != nil {
				return err
			}
			pending, pendingTypes = nil, nil
		}
	}
}
