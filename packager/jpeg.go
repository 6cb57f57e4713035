package packager

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"io"
)

// maxJPEG bounds one picture of a JPEG stream: a thumbnail is tens of kB, a
// runaway one must not eat the node's memory.
const maxJPEG = 8 << 20

// SplitJPEG reads back-to-back JPEG pictures (ffmpeg's image2pipe) and
// hands each whole picture, SOI to EOI, to picture. A picture's end is
// found by walking its marker segments and, after a start of scan, its
// entropy-coded data, where 0xFF is always stuffed or starts a marker, so
// no byte pattern inside the picture is mistaken for its end.
func SplitJPEG(r io.Reader, picture func([]byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		soi := make([]byte, 2)
		if _, err := io.ReadFull(br, soi); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("jpeg: %w", err)
		}
		if soi[0] != 0xFF || soi[1] != 0xD8 {
			return fmt.Errorf("jpeg: picture starts with %#x %#x, not SOI", soi[0], soi[1])
		}
		pic, err := readJPEG(br, soi)
		if err != nil {
			return err
		}
		if err := picture(pic); err != nil {
			return err
		}
	}
}

// readJPEG reads one picture after its SOI (already in buf) up to and
// including its EOI.
func readJPEG(br *bufio.Reader, buf []byte) ([]byte, error) {
	grow := func(b ...byte) error {
		buf = append(buf, b...)
		if len(buf) > maxJPEG {
			return fmt.Errorf("jpeg: picture larger than %d bytes", maxJPEG)
		}
		return nil
	}
	// marker reads the next marker code, skipping fill bytes (0xFF runs).
	marker := func() (byte, error) {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != 0xFF {
			return 0, fmt.Errorf("jpeg: %#x where a marker should be", b)
		}
		for b == 0xFF {
			if b, err = br.ReadByte(); err != nil {
				return 0, err
			}
		}
		return b, nil
	}
	m, err := marker()
	for {
		if err != nil {
			return nil, fmt.Errorf("jpeg: truncated picture: %w", err)
		}
		if err := grow(0xFF, m); err != nil {
			return nil, err
		}
		switch {
		case m == 0xD9: // EOI
			return buf, nil
		case m == 0x01 || m >= 0xD0 && m <= 0xD7: // TEM, RSTn: no length
			m, err = marker()
			continue
		}
		var l [2]byte
		if _, err = io.ReadFull(br, l[:]); err != nil {
			continue
		}
		n := int(l[0])<<8 | int(l[1])
		if n < 2 {
			return nil, fmt.Errorf("jpeg: marker %#x with length %d", m, n)
		}
		if err := grow(l[:]...); err != nil {
			return nil, err
		}
		seg := make([]byte, n-2)
		if _, err = io.ReadFull(br, seg); err != nil {
			continue
		}
		if err := grow(seg...); err != nil {
			return nil, err
		}
		if m != 0xDA { // not SOS: the next marker follows at once
			m, err = marker()
			continue
		}
		m, err = scan(br, grow)
	}
}

// scan copies entropy-coded data up to the next marker that is neither a
// stuffed 0xFF00 nor a restart marker, and returns that marker's code.
func scan(br *bufio.Reader, grow func(...byte) error) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != 0xFF {
			if err := grow(b); err != nil {
				return 0, err
			}
			continue
		}
		next, err := br.ReadByte()
		for err == nil && next == 0xFF {
			next, err = br.ReadByte()
		}
		if err != nil {
			return 0, err
		}
		if next == 0x00 || next >= 0xD0 && next <= 0xD7 {
			if err := grow(0xFF, next); err != nil {
				return 0, err
			}
			continue
		}
		return next, nil
	}
}

// Thumbnail widths a viewer may ask for (?width=): any width in between is
// made on demand and cached per picture (see thumbnail.scaled).
const (
	MinThumbnailWidth = 16
	MaxThumbnailWidth = 1920
)

// thumbnailQuality is the JPEG quality of a scaled thumbnail: small files,
// no visible blocks at the sizes a list of inputs shows.
const thumbnailQuality = 80

// ResizeJPEG scales a JPEG picture down to width (the height keeps the
// aspect ratio) with a box filter: every output pixel is the mean of the
// source pixels it covers, which is what a downscale needs to stay free of
// aliasing, and costs one pass over the source. A width at or above the
// picture's returns it unchanged: thumbnails are never upscaled.
func ResizeJPEG(src []byte, width int) ([]byte, error) {
	img, err := jpeg.Decode(bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("resize: %w", err)
	}
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	if width <= 0 || width >= sw {
		return src, nil
	}
	height := max(1, (sh*width+sw/2)/sw)
	rgba := image.NewRGBA(image.Rect(0, 0, sw, sh))
	draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Src)
	dst := boxDownscale(rgba, width, height)
	var out bytes.Buffer
	if err := jpeg.Encode(&out, dst, &jpeg.Options{Quality: thumbnailQuality}); err != nil {
		return nil, fmt.Errorf("resize: %w", err)
	}
	return out.Bytes(), nil
}

// boxDownscale averages src (origin 0,0) into a w×h picture, w and h no
// larger than src's.
func boxDownscale(src *image.RGBA, w, h int) *image.RGBA {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	// spans[i] is the source range [lo, hi) output column or row i covers;
	// never empty, even when the ratio is close to 1.
	spans := func(n, sn int) [][2]int {
		out := make([][2]int, n)
		for i := range out {
			lo, hi := i*sn/n, (i+1)*sn/n
			out[i] = [2]int{lo, max(hi, lo+1)}
		}
		return out
	}
	xs, ys := spans(w, sw), spans(h, sh)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y, yr := range ys {
		for x, xr := range xs {
			var r, g, bl, a, n int
			for sy := yr[0]; sy < yr[1]; sy++ {
				row := src.Pix[sy*src.Stride:]
				for sx := xr[0]; sx < xr[1]; sx++ {
					p := row[sx*4 : sx*4+4 : sx*4+4]
					r += int(p[0])
					g += int(p[1])
					bl += int(p[2])
					a += int(p[3])
					n++
				}
			}
			o := dst.Pix[y*dst.Stride+x*4:]
			o[0], o[1], o[2], o[3] = uint8((r+n/2)/n), uint8((g+n/2)/n), uint8((bl+n/2)/n), uint8((a+n/2)/n)
		}
	}
	return dst
}
