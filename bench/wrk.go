package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	RPS      float64
	P50, P99 float64 // milliseconds
	Errors   int     // socket errors + non-2xx/3xx responses
	ErrText  string  // wrk's own lines about them
}

// runWrk loads url with conns connections from 2 threads for d.
func runWrk(ctx context.Context, url string, conns int, d time.Duration) (wrkResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", "-t2", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(d.Seconds())),
		"--timeout", "5s", "--latency", url).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w: %s", url, err, out)
	}
	return parseWrk(string(out))
}

func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	inDist := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0:
		case f[0] == "Latency" && len(f) >= 2 && f[1] == "Distribution":
			inDist = true
		case inDist && (f[0] == "50%" || f[0] == "99%") && len(f) == 2:
			d, err := time.ParseDuration(f[1])
			if err != nil {
				return r, fmt.Errorf("wrk latency %q: %w", f[1], err)
			}
			ms := float64(d) / float64(time.Millisecond)
			if f[0] == "50%" {
				r.P50 = ms
			} else {
				r.P99 = ms
			}
		case f[0] == "Requests/sec:" && len(f) == 2:
			r.RPS, _ = strconv.ParseFloat(f[1], 64)
		case f[0] == "Socket" && len(f) >= 10:
			r.ErrText = strings.TrimSpace(sc.Text())
			for _, i := range []int{3, 5, 7, 9} {
				n, _ := strconv.Atoi(strings.TrimSuffix(f[i], ","))
				r.Errors += n
			}
		case f[0] == "Non-2xx":
			r.ErrText = strings.TrimSpace(r.ErrText + "; " + strings.TrimSpace(sc.Text()))
			n, _ := strconv.Atoi(f[len(f)-1])
			r.Errors += n
		}
	}
	if r.RPS == 0 {
		return r, fmt.Errorf("no Requests/sec in wrk output: %s", out)
	}
	return r, nil
}

// nginx is a foreground nginx on loopback with a config of our own.
type nginx struct {
	cmd    *exec.Cmd
	done   chan struct{}
	prefix string
}

// startNginx writes conf (the contents of the http{} block) into a fresh
// prefix under dir and starts nginx with 2 workers, as many as the box has
// cores and as GOMAXPROCS gives a node.
func startNginx(dir string, httpBlock string, ports ...int) (*nginx, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("nginx not installed (scripts/bench-deps.sh installs it)")
		}
	}
	prefix := filepath.Join(dir, "nginx")
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			return nil, err
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		// Workers must read files under the suite's 0700 temp dirs.
		user = "user root;\n"
	}
	conf := user + fmt.Sprintf(`worker_processes 2;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
%[2]s
}
`, prefix, httpBlock)
	cf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	n := &nginx{cmd: exec.Command(bin, "-p", prefix, "-c", cf, "-g", "daemon off;"), done: make(chan struct{}), prefix: prefix}
	n.cmd.Stderr = os.Stderr
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	for _, p := range ports {
		if err := waitListening(fmt.Sprintf("127.0.0.1:%d", p), 10*time.Second, n.done); err != nil {
			n.stop()
			b, _ := os.ReadFile(filepath.Join(prefix, "logs", "error.log"))
			return nil, fmt.Errorf("nginx: %w: %s", err, b)
		}
	}
	return n, nil
}

func (n *nginx) stop() {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM) // fast shutdown of master and workers
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
	}
}

func waitListening(addr string, timeout time.Duration, dead <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-dead:
			return fmt.Errorf("exited before listening on %s", addr)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listening on %s after %s", addr, timeout)
}

// bareRedirect is the floor a Go router can reach: net/http answering every
// request with the same 307 and nothing else.
func bareRedirect(target string) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Location", target+r.URL.RequestURI())
		w.WriteHeader(http.StatusTemporaryRedirect)
	})}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func lookWrk() (string, error) {
	p, err := exec.LookPath("wrk")
	if err != nil {
		return "", fmt.Errorf("wrk is not installed (scripts/bench-deps.sh installs it)")
	}
	return p, nil
}
