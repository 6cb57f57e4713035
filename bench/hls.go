package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/dionysia/dionysia/media"
)

// client follows redirects like a player or CDN; keep-alive connections are
// reused between polls.
var client = &http.Client{Timeout: 10 * time.Second}

// get fetches url and returns the body and the URL it came from after
// redirects.
func get(ctx context.Context, u string) ([]byte, *url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, resp.Request.URL, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return b, resp.Request.URL, nil
}

// firstVariant reads an input's master playlist through a node and returns
// the absolute URL of its first variant's media playlist.
func firstVariant(ctx context.Context, nodeURL, inputID string) (string, error) {
	b, final, err := get(ctx, nodeURL+"/live/"+inputID+"/"+media.MasterPlaylistName)
	if err != nil {
		return "", err
	}
	vs, err := media.ParseMasterPlaylist(bytesReader(b))
	if err != nil {
		return "", err
	}
	if len(vs) == 0 {
		return "", fmt.Errorf("master playlist lists no variant")
	}
	ref, err := url.Parse(vs[0].URI)
	if err != nil {
		return "", err
	}
	return final.ResolveReference(ref).String(), nil
}

// mediaPlaylist fetches and parses a media playlist.
func mediaPlaylist(ctx context.Context, u string) (*media.MediaPlaylist, *url.URL, error) {
	b, final, err := get(ctx, u)
	if err != nil {
		return nil, final, err
	}
	mp, err := media.ParseMediaPlaylist(bytesReader(b))
	return mp, final, err
}

// playableVia says whether an input plays through a node: its first
// variant lists at least one segment. It returns the host that served it.
func playableVia(ctx context.Context, nodeURL, inputID string) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	v, err := firstVariant(ctx, nodeURL, inputID)
	if err != nil {
		return false, ""
	}
	mp, final, err := mediaPlaylist(ctx, v)
	if err != nil || len(mp.Segments) == 0 {
		return false, ""
	}
	return true, final.Host
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
