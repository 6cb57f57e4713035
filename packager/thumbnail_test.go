package packager

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// testJPEG encodes a w×h picture: left half black, right half white, so a
// scaled copy shows whether pixels were averaged from the right places.
func testJPEG(t *testing.T, w, h int, opts *jpeg.Options) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8(0)
			if x >= w/2 {
				v = 255
			}
			img.Set(x, y, color.RGBA{v, v, v, 255})
		}
	}
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, opts))
	return b.Bytes()
}

func TestSplitJPEG(t *testing.T) {
	a := testJPEG(t, 64, 48, &jpeg.Options{Quality: 90})
	b := testJPEG(t, 32, 16, &jpeg.Options{Quality: 50})
	// c's entropy-coded data must hold stuffed 0xFF 0x00 pairs, or the
	// walk past them is not tested: noise gives plenty.
	noise := image.NewGray(image.Rect(0, 0, 64, 64))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(i * 7919 % 251)
	}
	var cb bytes.Buffer
	require.NoError(t, jpeg.Encode(&cb, noise, &jpeg.Options{Quality: 100}))
	c := cb.Bytes()
	require.Contains(t, string(c[200:]), "\xff\x00", "the noise picture has stuffed bytes")

	stream := bytes.Join([][]byte{a, b, c, a}, nil)
	var got [][]byte
	// One byte at a time: a picture is whole however the pipe delivers it.
	err := SplitJPEG(&oneByteReader{r: bytes.NewReader(stream)}, func(p []byte) error {
		got = append(got, bytes.Clone(p))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, [][]byte{a, b, c, a}, got)

	t.Run("truncated", func(t *testing.T) {
		err := SplitJPEG(bytes.NewReader(append(bytes.Clone(a), b[:len(b)/2]...)), func([]byte) error { return nil })
		require.ErrorContains(t, err, "truncated")
	})
	t.Run("not a JPEG", func(t *testing.T) {
		err := SplitJPEG(bytes.NewReader([]byte("\x00\x00\x00\x18ftypcmfc")), func([]byte) error { return nil })
		require.ErrorContains(t, err, "not SOI")
	})
	t.Run("callback error stops", func(t *testing.T) {
		boom := errors.New("boom")
		n := 0
		err := SplitJPEG(bytes.NewReader(stream), func([]byte) error { n++; return boom })
		require.ErrorIs(t, err, boom)
		require.Equal(t, 1, n)
	})
}

type oneByteReader struct{ r *bytes.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestResizeJPEG(t *testing.T) {
	src := testJPEG(t, 640, 360, &jpeg.Options{Quality: 95})
	out, err := ResizeJPEG(src, 160)
	require.NoError(t, err)
	img, err := jpeg.Decode(bytes.NewReader(out))
	require.NoError(t, err)
	require.Equal(t, image.Pt(160, 90), img.Bounds().Size(), "aspect ratio kept")
	// Averaging keeps the halves: dark left, light right, and the column
	// at the edge between them is not dark on one row and light on another.
	lum := func(x, y int) uint32 { r, _, _, _ := img.At(x, y).RGBA(); return r >> 8 }
	require.Less(t, lum(20, 45), uint32(40))
	require.Greater(t, lum(140, 45), uint32(215))

	odd, err := ResizeJPEG(src, 101)
	require.NoError(t, err)
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(odd))
	require.NoError(t, err)
	require.Equal(t, [2]int{101, 57}, [2]int{cfg.Width, cfg.Height}, "height rounded")

	same, err := ResizeJPEG(src, 640)
	require.NoError(t, err)
	require.Equal(t, src, same, "never upscaled, never re-encoded at its own size")
	_, err = ResizeJPEG([]byte("nope"), 100)
	require.Error(t, err)
}

func TestStreamThumbnail(t *testing.T) {
	ctx := context.Background()
	s := New(Config{})
	_, err := s.Serve(ctx, ThumbnailName, nil)
	require.ErrorIs(t, err, ErrNotFound, "none yet")
	require.True(t, s.ThumbnailAt().IsZero())

	g := s.Begin([]TrackSpec{{Name: "v", Kind: Video}})
	first := testJPEG(t, 320, 180, nil)
	require.NoError(t, g.Thumbnail(first), "kept before the generation is active")
	f, err := s.Serve(ctx, ThumbnailName, nil)
	require.NoError(t, err)
	require.Equal(t, first, f.Body)
	require.Equal(t, "image/jpeg", f.ContentType)
	require.Equal(t, "thumbnail", f.Kind)
	require.False(t, f.Immutable)
	require.Error(t, g.Thumbnail([]byte("not a jpeg")))

	// Scaled copies are made once per picture and width.
	small, err := s.Serve(ctx, ThumbnailName, url.Values{"width": {"64"}})
	require.NoError(t, err)
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(small.Body))
	require.NoError(t, err)
	require.Equal(t, [2]int{64, 36}, [2]int{cfg.Width, cfg.Height})
	again, err := s.Serve(ctx, ThumbnailName, url.Values{"width": {"64"}})
	require.NoError(t, err)
	require.Same(t, &small.Body[0], &again.Body[0], "served from the cache")
	big, err := s.Serve(ctx, ThumbnailName, url.Values{"width": {"1280"}})
	require.NoError(t, err)
	require.Equal(t, first, big.Body, "no upscaling")
	for _, w := range []string{"0", "15", "1921", "abc", "-5"} {
		_, err := s.Serve(ctx, ThumbnailName, url.Values{"width": {w}})
		var bad *BadRequestError
		require.ErrorAs(t, err, &bad, "width %q", w)
	}
	// Many widths: the cache stays bounded.
	for w := 20; w < 20+3*maxScaledThumbnails; w++ {
		_, err := s.Serve(ctx, ThumbnailName, url.Values{"width": {itoa(w)}})
		require.NoError(t, err)
	}
	s.thumbs.mu.Lock()
	require.LessOrEqual(t, len(s.thumbs.scaled), maxScaledThumbnails)
	s.thumbs.mu.Unlock()

	// A new picture replaces the old one and its scaled copies.
	wide, err := s.Serve(ctx, ThumbnailName, url.Values{"width": {"200"}})
	require.NoError(t, err)
	cfg, err = jpeg.DecodeConfig(bytes.NewReader(wide.Body))
	require.NoError(t, err)
	require.Equal(t, 200, cfg.Width)
	second := testJPEG(t, 160, 90, nil)
	require.NoError(t, g.Thumbnail(second))
	f, err = s.Serve(ctx, ThumbnailName, url.Values{"width": {"200"}})
	require.NoError(t, err)
	require.Equal(t, second, f.Body, "the new, narrower picture, not a cached copy of the old one")

	// A held hot standby and a retired generation change nothing.
	held := s.BeginHeld([]TrackSpec{{Name: "v", Kind: Video}})
	require.NoError(t, held.Thumbnail(first))
	g.Close()
	require.NoError(t, g.Thumbnail(first))
	f, err = s.Serve(ctx, ThumbnailName, nil)
	require.NoError(t, err)
	require.Equal(t, second, f.Body)
}

func itoa(n int) string { return string(rune('0'+n/10)) + string(rune('0'+n%10)) }
