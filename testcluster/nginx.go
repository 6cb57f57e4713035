package testcluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nginxBin is Debian's nginx, installed by `scripts/deps.sh --test`.
const nginxBin = "/usr/sbin/nginx"

// Nginx is a real nginx running as a caching CDN in front of a set of
// origins (the nodes): see StartNginxCache.
type Nginx struct {
	t      testing.TB
	cmd    *exec.Cmd
	done   chan struct{}
	dir    string
	url    string
	stderr lockedBuffer
	once   sync.Once
}

// Resp is one line of the cache's access log: one response to a client.
type Resp struct {
	Status int    // the status the client got
	URI    string // the request URI, query included
	// UpstreamStatus is every origin status nginx saw for this request,
	// comma-separated in the order tried ("502, 200" when the first origin
	// was dead); empty when served from the cache.
	UpstreamStatus string
	// Upstream is the origin address(es) tried, like UpstreamStatus.
	Upstream string
	// Cache is $upstream_cache_status: MISS, HIT, EXPIRED, BYPASS, STALE,
	// UPDATING, REVALIDATED; empty when the cache was not consulted.
	Cache string
	// At is when nginx logged the response (its end).
	At time.Time
	// Took is how long nginx took over the request ($request_time): a
	// blocking playlist reload waits here.
	Took time.Duration
	// Source is the origin's X-Dionysia-Source: which node answered, and
	// from what (empty for a cache hit).
	Source string
}

// String is one line for a test log.
func (r Resp) String() string {
	return fmt.Sprintf("%s %d %s took %s upstream %q (%s) cache %q source %q", r.At.Format("15:04:05.000"), r.Status, r.URI,
		r.Took, r.UpstreamStatus, r.Upstream, r.Cache, r.Source)
}

// nginxLogFormat writes one JSON object per response; Responses parses it.
const nginxLogFormat = `{"status":$status,"uri":"$request_uri","upstream_status":"$upstream_status",` +
	`"upstream":"$upstream_addr","cache":"$upstream_cache_status","msec":$msec,"rt":$request_time,"source":"$upstream_http_x_dionysia_source"}`

// StartNginxCache runs nginx in front of origins (base URLs such as
// Node.HTTPURL(), or host:port), configured like a CDN: one upstream holding
// every origin (round robin), a proxy cache that honours the origin's
// Cache-Control (nothing is cached without it) and collapses concurrent
// misses (proxy_cache_lock), the query string passed on and part of the
// cache key, and a dead or failing origin (connection error, timeout, 502,
// 503, 504) skipped for the next one, with a 1 s connect timeout.
// Redirects are not followed: a 3xx from an origin reaches the client as it
// is, Location untouched. Every response carries X-Cache (the cache
// status); the access log is read with Responses. The process, its cache
// and its logs go away when the test ends. The test is skipped without
// nginx, except in CI.
func StartNginxCache(t testing.TB, origins []string) *Nginx {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		missing(t, nginxBin+" (run `scripts/deps.sh --test`)")
	}
	if len(origins) == 0 {
		t.Fatalf("nginx: no origins")
	}
	var servers strings.Builder
	for _, o := range origins {
		hostport := o
		if strings.Contains(o, "://") {
			u, err := url.Parse(o)
			if err != nil || u.Scheme != "http" || u.Host == "" {
				t.Fatalf("nginx: origin %q: want an http:// base URL or host:port", o)
			}
			hostport = u.Host
		}
		if _, _, err := net.SplitHostPort(hostport); err != nil {
			t.Fatalf("nginx: origin %q: %v", o, err)
		}
		// A failed origin is left alone for 1 s, then tried again: a
		// restarted node is back in the rotation quickly.
		fmt.Fprintf(&servers, "    server %s max_fails=1 fail_timeout=1s;\n", hostport)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatalf("nginx: %v", err)
	}
	dir := t.TempDir()
	for _, d := range []string{"logs", "tmp", "cache"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatalf("nginx: %v", err)
		}
	}
	// One process (no master, no workers): light on the 2-core test box, and
	// nothing to drop privileges to when the tests run as root.
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log info;
events { worker_connections 1024; }
http {
  log_format dionysia escape=json '%[4]s';
  access_log %[1]s/logs/access.log dionysia;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  proxy_cache_path %[1]s/cache levels=1:2 keys_zone=dionysia:8m max_size=512m inactive=10m use_temp_path=off;
  upstream origins {
%[2]s    keepalive 16;
  }
  server {
    listen 127.0.0.1:%[3]d;
    location / {
      proxy_pass http://origins;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # The origins' own headers decide what is cached and for how long.
      proxy_cache dionysia;
      proxy_cache_key $scheme$proxy_host$request_uri;
      proxy_cache_lock on;
      proxy_cache_lock_age 5s;
      proxy_cache_lock_timeout 5s;
      proxy_connect_timeout 1s;
      proxy_send_timeout 5s;
      proxy_read_timeout 10s;
      proxy_next_upstream error timeout http_502 http_503 http_504;
      proxy_next_upstream_timeout 10s;
      # A redirect goes to the client as the origin wrote it.
      proxy_redirect off;
      add_header X-Cache $upstream_cache_status always;
    }
  }
}
`, dir, servers.String(), port, nginxLogFormat)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatalf("nginx: %v", err)
	}
	n := &Nginx{t: t, dir: dir, done: make(chan struct{}), url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	n.cmd = exec.Command(nginxBin, "-p", dir, "-c", cf, "-e", filepath.Join(dir, "logs", "error.log"))
	n.cmd.Stdout = &n.stderr
	n.cmd.Stderr = &n.stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	// Registered after t.TempDir: runs before the directory is removed.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", n.ErrorLog())
		}
		n.Close()
	})
	Eventually(t, 10*time.Second, "nginx listening on "+n.url, func() error {
		select {
		case <-n.done:
			return fmt.Errorf("nginx exited: %s %s", n.stderr.String(), n.ErrorLog())
		default:
		}
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(n.url, "http://"), time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return n
}

// URL is the cache's base URL, http://127.0.0.1:port.
func (n *Nginx) URL() string { return n.url }

// Responses reads the access log: every response nginx has finished, in
// order. nginx writes a line once the response is sent, so a client may see
// its response a moment before the line exists: poll (Eventually) when
// asserting on a request just made.
func (n *Nginx) Responses() []Resp {
	n.t.Helper()
	b, err := os.ReadFile(filepath.Join(n.dir, "logs", "access.log"))
	if err != nil && !os.IsNotExist(err) {
		n.t.Fatalf("nginx access log: %v", err)
	}
	var out []Resp
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r struct {
			Status         int     `json:"status"`
			URI            string  `json:"uri"`
			UpstreamStatus string  `json:"upstream_status"`
			Upstream       string  `json:"upstream"`
			Cache          string  `json:"cache"`
			Msec           float64 `json:"msec"`
			RT             float64 `json:"rt"`
			Source         string  `json:"source"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			// The last line may still be being written.
			continue
		}
		out = append(out, Resp{Status: r.Status, URI: r.URI, UpstreamStatus: r.UpstreamStatus, Upstream: r.Upstream,
			Cache: r.Cache, At: time.UnixMilli(int64(r.Msec * 1000)), Took: time.Duration(r.RT * float64(time.Second)).Round(time.Millisecond),
			Source: r.Source})
	}
	return out
}

// ErrorLog is nginx's error log so far.
func (n *Nginx) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "logs", "error.log"))
	return string(b)
}

// Close stops nginx (fast shutdown, then SIGKILL after 5 s) and waits for it.
// It is safe to call more than once; the test's cleanup calls it too.
func (n *Nginx) Close() {
	n.once.Do(func() {
		select {
		case <-n.done:
			return
		default:
		}
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
	})
}

// lockedBuffer is a bytes.Buffer exec may write to from its own goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
