package chaos

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Ports every node listens on, at its own address: each node has a network
// namespace of its own, so they can all use the same ones.
const (
	httpPort   = "8080"
	gossipPort = "7946"
	raftPort   = "7947"
)

// dataDirSize is the tmpfs under each data dir, small enough to fill at
// once. A full run writes 30 000–45 000 raft entries, and every write keeps
// its result in the idempotency store for 10 minutes (ADR 0006), about
// 0.6 KB of every snapshot: at 31 000 entries a node held 24 MB of raft.db
// and 22–34 MB of snapshots (two kept, a third while one is written). The
// 48 MB this used to be filled up on every node by the fifth fault, and
// nodes that could not store the log fell behind for good.
const dataDirSize = "256m"

// Proc is one node process in its namespace.
type Proc struct {
	Index   int
	Name    string
	NS      string
	IP      string
	DataDir string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
}

// HTTP is the node's API base URL.
func (p *Proc) HTTP() string { return "http://" + net.JoinHostPort(p.IP, httpPort) }

// Gossip is the node's gossip address, what others --join.
func (p *Proc) Gossip() string { return net.JoinHostPort(p.IP, gossipPort) }

// NodeSpec is what startNode needs besides the namespace.
type NodeSpec struct {
	Index    int
	NS       string
	Base     string   // the run's directory; the node's data dir and log go under it
	Join     []string // gossip addresses; empty = bootstrap
	Binary   string   // bin/dionysia
	MediaMTX string
	// ClusterKey (base64) puts the node in TLS mode (ADR 0009): mutual TLS
	// on the cluster port, RTSPS between nodes, encrypted gossip. Empty:
	// plain mode.
	ClusterKey string
}

// startNode mounts a tmpfs on the node's data dir and starts `dionysia node`
// inside its namespace. It is the one place that knows the node's flags.
func startNode(spec NodeSpec) (*Proc, error) {
	name := fmt.Sprintf("n%d", spec.Index)
	p := &Proc{Index: spec.Index, Name: name, NS: spec.NS, IP: nodeIP(spec.Index),
		DataDir: filepath.Join(spec.Base, name, "data"), LogPath: filepath.Join(spec.Base, name+".log"),
		done: make(chan struct{})}
	if err := os.MkdirAll(p.DataDir, 0o700); err != nil {
		return nil, err
	}
	// A tmpfs of its own per node: the full-disk fault fills exactly one
	// node's disk, and raft's fsyncs cost nothing on a shared 2-core box.
	if err := unix.Mount("dionysia-chaos", p.DataDir, "tmpfs", 0, "size="+dataDirSize+",mode=0700"); err != nil {
		return nil, fmt.Errorf("mount tmpfs on %s: %w", p.DataDir, err)
	}
	log, err := os.OpenFile(p.LogPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	addr := func(port string) string { return net.JoinHostPort(p.IP, port) }
	args := []string{"netns", "exec", spec.NS, spec.Binary, "node",
		"--name", name,
		"--data-dir", p.DataDir,
		"--advertise-host", p.IP,
		"--http-addr", addr(httpPort),
		"--gossip-addr", addr(gossipPort),
		"--raft-addr", addr(raftPort),
		"--rtmp-addr", addr("1935"),
		"--rtsp-addr", addr("8554"),
		"--srt-addr", addr("8890"),
		"--rtsps-addr", addr("8322"),
		"--mediamtx", spec.MediaMTX,
		"--no-demo",
		// JSON at debug: the checks read raft's "election won" lines.
		"--log-format", "json", "--log-level", "debug",
	}
	if len(spec.Join) > 0 {
		args = append(args, "--join", strings.Join(spec.Join, ","))
	}
	p.cmd = exec.Command("ip", args...)
	// Flags say everything: environment twins from the caller's shell
	// (the Makefile exports DIONYSIA_MEDIAMTX, ...) must not add to them.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DIONYSIA_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	if spec.ClusterKey != "" {
		// The one setting that is not a flag: a flag would show the key
		// to every local user in ps.
		p.cmd.Env = append(p.cmd.Env, "DIONYSIA_CLUSTER_KEY="+spec.ClusterKey)
	}
	p.cmd.Stdout, p.cmd.Stderr = log, log
	// Its own process group: cleanup kills the node with whatever it
	// started that did not take a group of its own. The death signal
	// (kept across ip's exec of the node) kills it when the test process
	// dies without its cleanup: go test's -timeout panic, a SIGKILL.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	onSpawnThread(func() { err = p.cmd.Start() })
	if err != nil {
		_ = unix.Unmount(p.DataDir, unix.MNT_DETACH)
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// spawnThread is one OS thread, locked to a goroutine that never returns,
// that forks every node. A child's death signal fires when the *thread*
// that forked it exits, not the process, and this package ends threads
// on purpose: DialContext moves a thread into the client namespace and
// lets the runtime discard it. A node forked from such a thread would be
// killed the moment its goroutine ended.
var spawnThread = sync.OnceValue(func() chan func() {
	ch := make(chan func())
	go func() {
		runtime.LockOSThread()
		for fn := range ch {
			fn()
		}
	}()
	return ch
})

// onSpawnThread runs fn on spawnThread and waits for it.
func onSpawnThread(fn func()) {
	done := make(chan struct{})
	spawnThread() <- func() { defer close(done); fn() }
	<-done
}

// Signal sends sig to the node process (ip netns exec execs it: same pid).
func (p *Proc) Signal(sig syscall.Signal) error {
	return syscall.Kill(p.cmd.Process.Pid, sig)
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop kills the node's process group, waits for it, and unmounts its data
// dir. A frozen node is thawed first so that it can die.
func (p *Proc) Stop() error {
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGCONT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s: still running 10s after SIGKILL", p.Name)
	}
	if err := unix.Unmount(p.DataDir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount %s: %w", p.DataDir, err)
	}
	return nil
}

// FillDisk writes a file into the node's data dir until the tmpfs is full.
func (p *Proc) FillDisk() error {
	f, err := os.Create(filepath.Join(p.DataDir, "chaos-filler"))
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for range 1 << 12 { // bounded: far more than any tmpfs we mount
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
	return fmt.Errorf("%s: data dir never filled up", p.Name)
}

// FreeDisk removes the filler.
func (p *Proc) FreeDisk() error {
	return os.Remove(filepath.Join(p.DataDir, "chaos-filler"))
}

// baseDir makes the run's directory, named so that Sweep can tell whose it is.
func baseDir() (string, error) {
	return os.MkdirTemp("", fmt.Sprintf("%s%d-", mountPrefix, os.Getpid()))
}
