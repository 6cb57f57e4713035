package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/packager"
)

// Recording and DVR (ADR 0012). Every node that holds an input's stream —
// its owner, and the standby with its copy — writes the stream's finished
// segments to its own disk when the input records or has a DVR window:
// <data-dir>/recordings/<recording id>/<track>/<file>, with the segments'
// records appended to index.jsonl once their files are whole, and the
// tracks in tracks.json. A show is one packager stream, so a reconnect or a
// failover continues the same files (the copy keeps the stream's id and
// numbering) and the same recording id. The DVR window is served from these
// files: memory holds only the live window.

const (
	recordingsDir = "recordings"
	indexFile     = "index.jsonl"
	tracksFile    = "tracks.json"
	// recordEvery is how often finished segments are written: well within
	// the time a segment stays in memory (Window + Keep segments).
	recordEvery = 500 * time.Millisecond
	// reportEvery is how often a node recording a show tells raft how far
	// it got (the asset's duration while it is recording).
	reportEvery = 10 * time.Second
	// dvrSlack keeps DVR-only files a while after they leave the window:
	// a player may still fetch what its last playlist named.
	dvrSlack = 60 * time.Second
	// recordingStale: a recording no node has reported for this long, of
	// an input with no session, is over; the leader makes it ready.
	recordingStale = 2 * time.Minute
	// orphanAge: a recording folder the state does not know (deleted, or
	// a DVR-only one left by a crash) is removed once this old.
	orphanAge = 10 * time.Second
)

// recorder writes the streams of this node to disk.
type recorder struct {
	n    *Node
	dir  string
	root *os.Root

	mu      sync.Mutex
	writers map[string]*recWriter // by recording id
	// deleted are recordings deleted while this node still holds their
	// stream (a copy lingering after the show): not written again.
	deleted map[string]bool
	// unopened are shows whose folder could not be made (a full disk):
	// like a write error, that stops the show's recording on this node,
	// rather than a retry and an error line every tick.
	unopened map[string]*unopenedShow

	bytesWritten prometheus.Counter
	failures     prometheus.Counter
	// reserveMB is Config.RecordingReserveMB: 0 = auto (diskReserve).
	reserveMB int
}

func newRecorder(n *Node) (*recorder, error) {
	dir := filepath.Join(n.cfg.DataDir, recordingsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create recordings folder: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open recordings folder: %w", err)
	}
	r := &recorder{n: n, dir: dir, root: root, reserveMB: n.cfg.RecordingReserveMB, writers: map[string]*recWriter{}, deleted: map[string]bool{}, unopened: map[string]*unopenedShow{},
		bytesWritten: prometheus.NewCounter(prometheus.CounterOpts{Name: "dionysia_recording_bytes_total",
			Help: "Bytes of segments this node wrote for recordings and DVR windows."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "dionysia_recording_failures_total",
			Help: "Recordings this node stopped writing because of a disk error (a full disk): the live stream goes on."}),
	}
	if n.reg != nil {
		for _, c := range []prometheus.Collector{r.bytesWritten, r.failures} {
			if err := n.reg.Register(c); err != nil {
				return nil, fmt.Errorf("register recording metrics: %w", err)
			}
		}
	}
	return r, nil
}

// recWriter writes one stream of one input.
type recWriter struct {
	rec    *recorder
	id     string // recording id
	input  string
	stream *packager.Stream
	// keep: the input records (everything stays, reported to raft);
	// otherwise the files are only the DVR window and go with the stream.
	keep bool
	dvr  int // DVR window, seconds
	root *os.Root

	marks     map[string]uint64
	tracks    []packager.TrackRecord
	tracksSig string
	inits     map[string]bool // "<track>/<file>" written
	index     *os.File
	indexSize int64 // bytes of whole lines in index
	first     time.Time
	last      time.Time
	duration  map[string]float64
	bytes     int64
	err       error
	// errReported: raft has the error (a report made while the cluster
	// had no leader is made again, or the asset would not show it
	// until the show ends).
	errReported bool
	created     bool // the recording is in raft
	reported    time.Time
	done        bool // reported ready
	lastWrite   time.Time

	mu  sync.Mutex
	win map[string][]packager.SegmentRecord // the DVR window and a little more, per track
}

var _ packager.Archive = (*recWriter)(nil)

// Archived implements packager.Archive.
func (w *recWriter) Archived(track string) []packager.SegmentRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.win[track]
}

// ReadArchived implements packager.Archive.
func (w *recWriter) ReadArchived(track, file string) ([]byte, error) {
	if !safeName(track) || !safeName(file) {
		return nil, packager.ErrNotFound
	}
	b, err := w.root.ReadFile(track + "/" + file)
	if err != nil {
		return nil, packager.ErrNotFound
	}
	return b, nil
}

// safeName is one path element of ours: no separators, no dot names.
func safeName(s string) bool {
	return s != "" && len(s) <= 128 && !strings.HasPrefix(s, ".") && !strings.ContainsAny(s, "/\\\x00")
}

// loop writes every 500 ms, and once in a while removes folders of
// recordings the cluster deleted.
func (r *recorder) loop(ctx context.Context) {
	t := time.NewTicker(recordEvery)
	defer t.Stop()
	var gcAt time.Time
	for {
		select {
		case <-ctx.Done():
			r.closeAll()
			return
		case <-t.C:
		}
		r.tick(ctx)
		if time.Since(gcAt) > 5*time.Second {
			gcAt = time.Now()
			r.collect()
		}
	}
}

// tick writes what the streams of this node finished since the last tick.
func (r *recorder) tick(ctx context.Context) {
	streams := r.n.streams.snapshot()
	seen := map[string]bool{}
	for id, stream := range streams {
		rid := fsm.RecordingID(id, stream.ID())
		r.mu.Lock()
		w := r.writers[rid]
		u := r.unopened[rid]
		deleted := r.deleted[rid] || u != nil
		r.mu.Unlock()
		if deleted {
			seen[rid] = true
			if u != nil && !u.reported && time.Since(u.tried) > 2*time.Second {
				r.reportUnopened(ctx, u)
			}
			continue
		}
		if w != nil && w.created && r.n.state.Recording(rid) == nil {
			// Deleted (by a user, or expired) while this node still holds
			// the stream: its files go now, not when the copy is forgotten.
			stream.SetArchive(nil, 0)
			r.mu.Lock()
			delete(r.writers, rid)
			r.deleted[rid] = true
			r.mu.Unlock()
			w.done = true
			w.close(ctx)
			if err := r.root.RemoveAll(rid); err == nil {
				r.n.log.Info("recording files removed", "recording", rid)
			}
			seen[rid] = true
			continue
		}
		if w == nil {
			in := r.n.state.Input(id)
			if in == nil || (!in.Record && in.DVRWindowSeconds <= 0) {
				continue
			}
			var err error
			if w, err = r.open(rid, in); err != nil {
				seen[rid] = true
				r.openFailed(ctx, rid, in, stream.ID(), err)
				// The DVR window still plays from memory.
				stream.SetArchive(nil, in.DVRWindowSeconds)
				continue
			}
		}
		seen[rid] = true
		if w.stream != stream {
			// A new model of the same show (a copy made again): it serves
			// the DVR window from the same files.
			w.stream = stream
			stream.SetArchive(w, w.dvr)
		}
		w.write(ctx)
	}
	r.mu.Lock()
	var gone []*recWriter
	for rid, w := range r.writers {
		if !seen[rid] {
			gone = append(gone, w)
			delete(r.writers, rid)
		}
	}
	for rid := range r.deleted {
		if !seen[rid] {
			delete(r.deleted, rid)
		}
	}
	for rid := range r.unopened {
		if !seen[rid] {
			delete(r.unopened, rid)
		}
	}
	r.mu.Unlock()
	for _, w := range gone {
		w.close(ctx)
	}
}

// open starts writing a show of an input.
func (r *recorder) open(rid string, in *fsm.Input) (*recWriter, error) {
	if err := r.root.MkdirAll(rid, 0o700); err != nil {
		return nil, err
	}
	root, err := r.root.OpenRoot(rid)
	if err != nil {
		return nil, err
	}
	w := &recWriter{rec: r, id: rid, input: in.ID, keep: in.Record, dvr: in.DVRWindowSeconds, root: root,
		marks: map[string]uint64{}, inits: map[string]bool{}, duration: map[string]float64{},
		win: map[string][]packager.SegmentRecord{}}
	// A cut last line (a crash, a full disk) goes before the index is
	// read: a line whose JSON is whole but whose newline is missing would
	// otherwise count as written here and never be written again.
	size, err := repairIndex(root)
	if err != nil {
		root.Close()
		return nil, err
	}
	// This node may have written part of this show before (a copy it held
	// earlier): continue after what its index has.
	if c, err := readCopy(root, r.n.cfg.Name); err == nil {
		for _, sg := range c.Segments {
			w.marks[sg.Track] = max(w.marks[sg.Track], sg.MSN)
			w.duration[sg.Track] += sg.Duration
			w.bytes += int64(sg.Size)
			w.inits[sg.Track+"/"+sg.Init] = true
			if w.first.IsZero() {
				w.first = sg.PDT
			}
			if w.dvr > 0 {
				w.win[sg.Track] = append(w.win[sg.Track], sg)
			}
		}
		for track := range w.win {
			w.trimWindow(track)
		}
	}
	f, err := root.OpenFile(indexFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		root.Close()
		return nil, err
	}
	w.index, w.indexSize = f, size
	r.mu.Lock()
	r.writers[rid] = w
	r.mu.Unlock()
	r.n.log.Info("recording stream", "input", in.ID, "recording", rid, "keep", in.Record, "dvr_window_seconds", in.DVRWindowSeconds)
	return w, nil
}

// write puts the stream's newly finished segments on disk, then tells
// raft what the recording looks like now and then.
func (w *recWriter) write(ctx context.Context) {
	if w.stream == nil {
		return
	}
	tracks, segs, marks, ended := w.stream.Finished(w.marks)
	if w.err == nil {
		if err := w.writeTracks(tracks); err != nil {
			w.fail(ctx, err)
		}
	}
	for _, f := range segs {
		if w.err != nil {
			break
		}
		if err := w.writeSegment(f); err != nil {
			w.fail(ctx, err)
			break
		}
		w.marks[f.Record.Track] = f.Record.MSN
	}
	if w.err == nil {
		w.marks = marks
	}
	if !w.keep || w.done {
		return
	}
	switch {
	case ended && (len(segs) == 0 || w.err != nil):
		if w.report(ctx, fsm.RecordingReady) {
			w.done = true
		}
	case w.err != nil && !w.errReported && time.Since(w.reported) > 2*time.Second,
		!w.created && w.bytes > 0 && time.Since(w.reported) > 2*time.Second,
		w.created && time.Since(w.reported) > reportEvery && w.lastWrite.After(w.reported):
		w.report(ctx, fsm.RecordingActive)
	}
}

func (w *recWriter) writeTracks(tracks []packager.TrackRecord) error {
	b, err := json.Marshal(tracks)
	if err != nil {
		return err
	}
	if string(b) == w.tracksSig || len(tracks) == 0 {
		return nil
	}
	if err := writeFileAtomic(w.root, tracksFile, b); err != nil {
		return fmt.Errorf("write %s: %w", tracksFile, err)
	}
	w.tracks, w.tracksSig = tracks, string(b)
	return nil
}

func (w *recWriter) writeSegment(f packager.Finished) error {
	rec := f.Record
	if !safeName(rec.Track) || !safeName(rec.File) || (rec.Init != "" && !safeName(rec.Init)) {
		return fmt.Errorf("unexpected file name %q/%q", rec.Track, rec.File)
	}
	if err := w.root.MkdirAll(rec.Track, 0o700); err != nil {
		return err
	}
	newInit := rec.Init != "" && !w.inits[rec.Track+"/"+rec.Init] && f.Init != nil
	need := len(f.Data)
	if newInit {
		need += len(f.Init)
	}
	if err := w.rec.roomFor(need); err != nil {
		return err
	}
	if newInit {
		if err := writeFileAtomic(w.root, rec.Track+"/"+rec.Init, f.Init); err != nil {
			return err
		}
		w.inits[rec.Track+"/"+rec.Init] = true
	}
	if err := writeFileAtomic(w.root, rec.Track+"/"+rec.File, f.Data); err != nil {
		return err
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	// The index names only files that are whole.
	line = append(line, '\n')
	if _, err := w.index.Write(line); err != nil {
		// A full disk can take part of the line: cut it off, so the index
		// stays whole lines if this copy is ever continued.
		_ = w.index.Truncate(w.indexSize)
		return fmt.Errorf("append to the index: %w", err)
	}
	w.indexSize += int64(len(line))
	w.rec.bytesWritten.Add(float64(len(f.Data)))
	w.bytes += int64(len(f.Data))
	w.duration[rec.Track] += rec.Duration
	if w.first.IsZero() {
		w.first = rec.PDT
	}
	if end := rec.PDT.Add(time.Duration(rec.Duration * float64(time.Second))); end.After(w.last) {
		w.last = end
	}
	w.lastWrite = time.Now()
	if w.dvr > 0 {
		w.mu.Lock()
		w.win[rec.Track] = append(w.win[rec.Track], rec)
		dropped := w.trimWindow(rec.Track)
		w.mu.Unlock()
		if !w.keep {
			for _, d := range dropped {
				_ = w.root.Remove(d.Track + "/" + d.File)
			}
		}
	}
	return nil
}

// roomFor refuses a write that would leave less than the reserve free on
// the recordings' file system. The raft log and the node's other files
// usually share it: a recording that filled it to the last byte would
// stop raft, and with it the live streams the recording must never harm.
// The error is a full disk's (ENOSPC), with the figures.
func (r *recorder) roomFor(n int) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(r.dir, &st); err != nil {
		return nil // no figures: the write itself finds a full disk
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	reserve := diskReserve(int64(st.Blocks)*int64(st.Bsize), r.reserveMB)
	if free-int64(n) >= reserve {
		return nil
	}
	return fmt.Errorf("%w: %s free on the recordings file system, and %s more would eat into the %s kept free for the node (--recording-reserve-mb)",
		syscall.ENOSPC, humanBytes(free), humanBytes(int64(n)), humanBytes(reserve))
}

// diskReserve is the free space recordings leave on a file system of
// size bytes: reserveMB when set, else 5 % of it, at most 1 GiB (enough
// for raft and logs to go on for days; little on a small disk).
func diskReserve(size int64, reserveMB int) int64 {
	if reserveMB > 0 {
		return int64(reserveMB) << 20
	}
	return min(size/20, 1<<30)
}

// humanBytes is n in kB, MB or GB for a message.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d kB", n>>10)
	}
}

// trimWindow drops what is older than the DVR window and its slack from
// memory (w.mu held), and returns it.
func (w *recWriter) trimWindow(track string) []packager.SegmentRecord {
	list := w.win[track]
	keep := packager.WindowOf(list, float64(w.dvr)+dvrSlack.Seconds())
	dropped := list[:len(list)-len(keep)]
	if len(dropped) > 0 && cap(keep) > 2*len(keep)+64 {
		keep = append([]packager.SegmentRecord(nil), keep...)
	}
	w.win[track] = keep
	return dropped
}

// fail stops writing this show: a full disk stops the recording, never
// the live stream.
func (w *recWriter) fail(ctx context.Context, err error) {
	w.err = err
	w.rec.failures.Inc()
	w.rec.n.log.Error("recording stopped: cannot write to disk (the live stream goes on)", "input", w.input,
		"recording", w.id, "err", err)
	if w.keep {
		w.report(ctx, fsm.RecordingActive)
	}
}

// openFailed stops a show's recording on this node when its folder
// cannot be made: the error is logged and counted once, and a recorded
// input's asset shows it (there is nothing of it on this node).
func (r *recorder) openFailed(ctx context.Context, rid string, in *fsm.Input, streamID string, err error) {
	u := &unopenedShow{id: rid, input: in.ID, streamID: streamID, err: err, reported: !in.Record}
	r.mu.Lock()
	r.unopened[rid] = u
	r.mu.Unlock()
	r.failures.Inc()
	r.n.log.Error("recording stopped: cannot write to disk (the live stream goes on)", "input", in.ID,
		"recording", rid, "err", err)
	if !u.reported {
		r.reportUnopened(ctx, u)
	}
}

// unopenedShow is a show whose folder could not be made on this node.
// Only the recorder's loop touches it.
type unopenedShow struct {
	id, input, streamID string
	err                 error
	// reported: raft has the error (a report made while the cluster had
	// no leader is made again, or the user would see no recording at all).
	reported bool
	tried    time.Time
}

// reportUnopened puts the error on the asset. The node is not named as
// holding the recording: it has none of it.
func (r *recorder) reportUnopened(ctx context.Context, u *unopenedShow) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u.tried = time.Now()
	rec := &fsm.Recording{ID: u.id, InputID: u.input, StreamID: u.streamID, Status: fsm.RecordingActive, StartedAt: time.Now().UTC(),
		Error: "recording stopped on " + r.n.cfg.Name + ": " + u.err.Error()}
	res, err := r.n.apply(ctx, fsm.Command{Op: fsm.OpPutRecording, At: time.Now().UTC(), Recording: rec})
	if err == nil && res.Err != nil {
		err = res.Err
	}
	if err != nil {
		r.n.log.Warn("report recording", "recording", u.id, "err", err)
		return
	}
	u.reported = true
}

// report proposes what this node has of the recording.
func (w *recWriter) report(ctx context.Context, status string) bool {
	var longest float64
	for _, d := range w.duration {
		longest = max(longest, d)
	}
	names := make([]string, 0, len(w.tracks))
	for _, t := range w.tracks {
		if t.Info.Kind == packager.Video {
			names = append(names, t.Spec.Name)
		}
	}
	started := w.first
	if started.IsZero() {
		// Nothing written (the disk was full from the first segment): the
		// asset still needs a start, or it sorts behind every older show.
		started = time.Now().UTC()
	}
	rec := &fsm.Recording{ID: w.id, InputID: w.input, StreamID: w.stream.ID(), Status: status, StartedAt: started,
		DurationSeconds: longest, Bytes: w.bytes, Renditions: names}
	if status == fsm.RecordingReady {
		rec.EndedAt = w.last
	}
	if w.err != nil {
		rec.Error = "recording stopped on " + w.rec.n.cfg.Name + ": " + w.err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := w.rec.n.apply(ctx, fsm.Command{Op: fsm.OpPutRecording, At: time.Now().UTC(), Node: w.rec.n.cfg.Name, Recording: rec})
	if err == nil && res.Err != nil {
		err = res.Err
	}
	if err != nil {
		w.reported = time.Now() // not again at once
		w.rec.n.log.Warn("report recording", "recording", w.id, "err", err)
		return false
	}
	w.created, w.reported = true, time.Now()
	w.errReported = w.err != nil
	if status == fsm.RecordingReady {
		w.rec.n.log.Info("recording ready", "input", w.input, "recording", w.id, "duration", time.Duration(longest*float64(time.Second)).Round(time.Second))
	}
	return true
}

// close ends a writer whose stream this node no longer holds.
func (w *recWriter) close(ctx context.Context) {
	if w.keep && !w.done && (w.created || (w.err != nil && !w.errReported)) && ctx.Err() == nil {
		// What this node wrote; the show goes on elsewhere, or the leader
		// finishes it.
		w.report(ctx, fsm.RecordingActive)
	}
	_ = w.index.Close()
	_ = w.root.Close()
	if !w.keep {
		_ = w.rec.root.RemoveAll(w.id)
	}
}

func (r *recorder) closeAll() {
	r.mu.Lock()
	ws := r.writers
	r.writers = map[string]*recWriter{}
	r.mu.Unlock()
	for _, w := range ws {
		w.close(context.Background())
	}
}

// collect removes the folders of recordings the cluster no longer has
// (deleted by a user or by retention), and DVR-only folders left by a
// crash.
func (r *recorder) collect() {
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		return
	}
	r.mu.Lock()
	active := map[string]bool{}
	for id := range r.writers {
		active[id] = true
	}
	r.mu.Unlock()
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || active[name] || r.n.state.Recording(name) != nil {
			continue
		}
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < orphanAge {
			continue
		}
		if err := r.root.RemoveAll(name); err != nil {
			r.n.log.Warn("remove recording files", "recording", name, "err", err)
			continue
		}
		r.n.log.Info("recording files removed", "recording", name)
	}
}

// localCopy reads this node's copy of a recording; fs.ErrNotExist when it
// has none.
func (r *recorder) localCopy(rid string) (packager.Copy, error) {
	if !safeName(rid) {
		return packager.Copy{}, fs.ErrNotExist
	}
	root, err := r.root.OpenRoot(rid)
	if err != nil {
		return packager.Copy{}, err
	}
	defer root.Close()
	return readCopy(root, r.n.cfg.Name)
}

// readLocal reads one media file of this node's copy of a recording.
func (r *recorder) readLocal(rid, track, file string) ([]byte, error) {
	if !safeName(rid) || !safeName(track) || !safeName(file) {
		return nil, fs.ErrNotExist
	}
	return r.root.ReadFile(rid + "/" + track + "/" + file)
}

// readCopy parses a recording folder's tracks and index. A last line cut
// short (a crash while appending) is ignored.
func readCopy(root *os.Root, node string) (packager.Copy, error) {
	c := packager.Copy{Node: node}
	b, err := root.ReadFile(tracksFile)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c.Tracks); err != nil {
		return c, fmt.Errorf("read %s: %w", tracksFile, err)
	}
	idx, err := root.ReadFile(indexFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return c, err
	}
	sc := bufio.NewScanner(bytes.NewReader(idx))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var sg packager.SegmentRecord
		if json.Unmarshal(sc.Bytes(), &sg) == nil && sg.File != "" {
			c.Segments = append(c.Segments, sg)
		}
	}
	return c, nil
}

// repairIndex cuts a last line a crash or a full disk left short, so what
// is appended next starts a line of its own, and returns the index's size
// (0 when there is none yet).
func repairIndex(root *os.Root) (int64, error) {
	b, err := root.ReadFile(indexFile)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", indexFile, err)
	}
	whole := int64(bytes.LastIndexByte(b, '\n') + 1)
	if whole == int64(len(b)) {
		return whole, nil
	}
	f, err := root.OpenFile(indexFile, os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	err = f.Truncate(whole)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("cut the short last line of %s: %w", indexFile, err)
	}
	return whole, nil
}

// writeFileAtomic writes a file under a temporary name and renames it, so
// nothing ever reads half of it.
func writeFileAtomic(root *os.Root, name string, b []byte) error {
	tmp := name + ".tmp"
	f, err := root.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		_ = root.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		_ = root.Remove(tmp)
		return err
	}
	return root.Rename(tmp, name)
}
