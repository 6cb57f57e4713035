package packager

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// ThumbnailName is the stream's latest picture, a JPEG.
const ThumbnailName = "thumbnail.jpg"

// maxScaledThumbnails bounds the sizes kept per picture: a page uses one or
// two; a client walking through every width makes the cache start over.
const maxScaledThumbnails = 8

// thumbnails holds a stream's latest picture and the smaller copies made of
// it. It has its own lock: scaling a picture must not hold up the stream.
type thumbnails struct {
	mu     sync.Mutex
	pic    []byte
	width  int
	at     time.Time
	seq    uint64         // counts pictures, so a copy made of an old one is not kept
	scaled map[int][]byte // width -> JPEG, for pic
}

// Thumbnail gives the stream a new picture of the source. A hot standby's
// held generation and a retired one do not replace what viewers see; the
// picture is kept even while the generation waits to become active, so the
// first thumbnail of a show is there as soon as ffmpeg made it.
func (g *Gen) Thumbnail(b []byte) error {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("thumbnail: %w", err)
	}
	s := g.s
	s.mu.Lock()
	skip := g.held || g.retired
	s.mu.Unlock()
	if skip {
		return nil
	}
	t := &s.thumbs
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pic, t.width, t.at = b, cfg.Width, s.now()
	t.seq++
	clear(t.scaled)
	return nil
}

// ThumbnailAt is when the latest thumbnail was made; zero when none.
func (s *Stream) ThumbnailAt() time.Time {
	s.thumbs.mu.Lock()
	defer s.thumbs.mu.Unlock()
	return s.thumbs.at
}

// serveThumbnail answers thumbnail.jpg, scaled down to ?width= when asked.
func (s *Stream) serveThumbnail(q url.Values) (File, error) {
	width := 0
	if v := q.Get("width"); v != "" {
		w, err := strconv.Atoi(v)
		if err != nil || w < MinThumbnailWidth || w > MaxThumbnailWidth {
			return File{}, &BadRequestError{Msg: fmt.Sprintf("width must be a number of pixels, %d-%d", MinThumbnailWidth, MaxThumbnailWidth)}
		}
		width = w
	}
	t := &s.thumbs
	t.mu.Lock()
	pic, orig, seq := t.pic, t.width, t.seq
	scaled, ok := t.scaled[width]
	t.mu.Unlock()
	if pic == nil {
		return File{}, ErrNotFound
	}
	file := func(b []byte) File { return File{Body: b, ContentType: "image/jpeg", Kind: "thumbnail"} }
	if width == 0 || width >= orig {
		return file(pic), nil
	}
	if ok {
		return file(scaled), nil
	}
	b, err := ResizeJPEG(pic, width)
	if err != nil {
		return File{}, err
	}
	t.mu.Lock()
	if t.seq == seq {
		if len(t.scaled) >= maxScaledThumbnails {
			clear(t.scaled)
		}
		if t.scaled == nil {
			t.scaled = map[int][]byte{}
		}
		t.scaled[width] = b
	}
	t.mu.Unlock()
	return file(b), nil
}
