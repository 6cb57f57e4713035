package chaos

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"golang.org/x/sys/unix"
)

// Without sch_netem (some minimal VM kernels) the latency fault delays
// packets in userspace instead: an iptables rule in each node's namespace
// hands what the node sends on eth0 to an NFQUEUE queue, and the test
// process holds each packet for the delay before it accepts it. nftables
// has no queue statement on such kernels (CONFIG_NFT_QUEUE), but the xt
// NFQUEUE target works through iptables (legacy or nft-backed).
const (
	// delayQueue is the queue number; queues are per namespace, so every
	// node uses the same one.
	delayQueue = 7700
	// delayQueueLen bounds what the kernel holds for one namespace; past
	// it packets pass undelayed (fail-open) rather than pile up.
	delayQueueLen = 4096
)

// Delayer holds the packets that some namespaces send on eth0 for a fixed
// time before letting them go.
type Delayer struct {
	delay  time.Duration
	held   atomic.Uint64 // packets that waited the delay
	ns     []string
	queues []*nsQueue
	cancel context.CancelFunc
}

// nsQueue is one namespace's queue and the packets waiting in it, oldest
// first: every packet waits equally long, so arrival order is release order.
type nsQueue struct {
	nf      *nfqueue.Nfqueue
	done    chan struct{}
	mu      sync.Mutex
	stopped bool
	waiting chan held // closed once stopped
}

// stop lets the packets already waiting go when due and every later one at
// once.
func (q *nsQueue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.stopped {
		q.stopped = true
		close(q.waiting)
	}
}

type held struct {
	id  uint32
	due time.Time
}

// iptablesRule is the rule (without -A/-D) that queues what a namespace
// sends on eth0. --queue-bypass lets packets through when no delayer is
// bound (it died, or has not bound yet).
func iptablesRule() []string {
	return []string{"-t", "mangle", "POSTROUTING", "-o", "eth0", "-j", "NFQUEUE",
		"--queue-num", strconv.Itoa(delayQueue), "--queue-bypass"}
}

func iptables(ctx context.Context, ns, op string) error {
	r := iptablesRule()
	args := append([]string{r[0], r[1], op}, r[2:]...)
	return runIn(ctx, ns, "iptables", args...)
}

// StartDelay delays every packet the namespaces send on eth0 by d. Stop
// ends it.
func StartDelay(ctx context.Context, namespaces []string, d time.Duration) (*Delayer, error) {
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil, fmt.Errorf("nfqueue delay needs iptables: %w", err)
	}
	qctx, cancel := context.WithCancel(context.Background())
	dl := &Delayer{delay: d, cancel: cancel}
	for _, ns := range namespaces {
		q, err := openQueue(qctx, ns, d, &dl.held)
		if err != nil {
			_ = dl.Stop(ctx)
			return nil, err
		}
		dl.queues = append(dl.queues, q)
		// The rule goes in only once the queue is bound and read, so no
		// packet waits on a queue nobody reads (--queue-bypass would let
		// it through undelayed anyway).
		if err := iptables(ctx, ns, "-A"); err != nil {
			_ = dl.Stop(ctx)
			return nil, err
		}
		dl.ns = append(dl.ns, ns)
	}
	return dl, nil
}

// Held is how many packets have waited the delay so far.
func (dl *Delayer) Held() uint64 { return dl.held.Load() }

// Stop removes the rules, lets the packets still held go when they are due
// and closes the queues.
func (dl *Delayer) Stop(ctx context.Context) error {
	var errs []error
	for _, ns := range dl.ns {
		if err := iptables(ctx, ns, "-D"); err != nil {
			errs = append(errs, err)
		}
	}
	dl.ns = nil
	// Nothing new is queued now. Closing a queue drops what it holds, so
	// the packets already in it get their verdicts first (those still in
	// flight to the hook are let go at once).
	for _, q := range dl.queues {
		q.stop()
	}
	for _, q := range dl.queues {
		select {
		case <-q.done:
		case <-time.After(dl.delay + 2*time.Second):
		}
	}
	dl.cancel()
	for _, q := range dl.queues {
		if err := q.nf.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	dl.queues = nil
	return errors.Join(errs...)
}

// openQueue binds the delay queue in namespace ns. The netlink socket is
// made on an OS thread that joined ns, so it belongs to ns; the thread is
// never unlocked, so the runtime discards it afterwards and no goroutine
// runs in ns by accident.
func openQueue(ctx context.Context, ns string, d time.Duration, count *atomic.Uint64) (*nsQueue, error) {
	var nf *nfqueue.Nfqueue
	err := inNS(ns, func() error {
		var err error
		nf, err = nfqueue.Open(&nfqueue.Config{
			NfQueue:      delayQueue,
			MaxQueueLen:  delayQueueLen,
			Copymode:     nfqueue.NfQnlCopyMeta, // the verdict needs only the id
			AfFamily:     unix.AF_INET,
			Flags:        nfqueue.NfQaCfgFlagFailOpen | nfqueue.NfQaCfgFlagGSO,
			WriteTimeout: time.Second,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("nfqueue in %s: %w", ns, err)
	}
	q := &nsQueue{nf: nf, waiting: make(chan held, delayQueueLen), done: make(chan struct{})}
	hook := func(a nfqueue.Attribute) int {
		if a.PacketID == nil {
			return 0
		}
		q.mu.Lock()
		queued := false
		if !q.stopped {
			select {
			case q.waiting <- held{id: *a.PacketID, due: time.Now().Add(d)}:
				queued = true
			default: // more held than the kernel should allow
			}
		}
		q.mu.Unlock()
		if !queued {
			_ = nf.SetVerdict(*a.PacketID, nfqueue.NfAccept)
		}
		return 0
	}
	// Receive errors (ENOBUFS under load, the read deadline set on
	// cancel) must not stop the hook; cancel ends it.
	onErr := func(error) int {
		if ctx.Err() != nil {
			return 1
		}
		return 0
	}
	if err := nf.RegisterWithErrorFunc(ctx, hook, onErr); err != nil {
		_ = nf.Close()
		return nil, fmt.Errorf("nfqueue register in %s: %w", ns, err)
	}
	go func() {
		defer close(q.done)
		for h := range q.waiting {
			if w := time.Until(h.due); w > 0 {
				time.Sleep(w)
			}
			_ = nf.SetVerdict(h.id, nfqueue.NfAccept)
			count.Add(1)
		}
	}()
	return q, nil
}

// inNS runs fn on an OS thread that joined namespace ns; the thread is
// thrown away afterwards (locked and never unlocked).
func inNS(ns string, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(filepath.Join("/var/run/netns", ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- fmt.Errorf("open netns %s: %w", ns, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			ch <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ch <- fn()
	}()
	return <-ch
}

// delayAvailable reports whether the NFQUEUE delayer works here: iptables
// present and its NFQUEUE target accepted by the kernel.
func delayAvailable(ctx context.Context, ns string) error {
	if _, err := exec.LookPath("iptables"); err != nil {
		return err
	}
	if err := iptables(ctx, ns, "-A"); err != nil {
		return err
	}
	if err := iptables(ctx, ns, "-D"); err != nil {
		return err
	}
	return nil
}
