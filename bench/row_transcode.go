package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dionysia/dionysia/fsm"
	"github.com/dionysia/dionysia/media"
	"github.com/dionysia/dionysia/node"
)

const transcodeSeconds = 60

// rowTranscode: CPU seconds of the project's ffmpeg command versus a
// hand-written one for the same ladder and segments, on a file source read
// as fast as possible, interleaved.
func rowTranscode(ctx context.Context, t *testing.T, e *Env, r *Row) error {
	src, err := e.Source(ctx, 1280, 720, transcodeSeconds)
	if err != nil {
		return err
	}
	prof := *node.DefaultProfile()
	dirA := filepath.Join(e.Work, "transcode-dionysia")
	dirB := filepath.Join(e.Work, "transcode-baseline")
	projectArgs := func() ([]string, error) {
		return media.FFmpegArgs(media.TranscodeSpec{
			SourceURL: src, Profile: prof, OutputDir: dirA,
			HasVideo: true, HasAudio: true, SourceAudioAAC: true,
		})
	}
	a, err := projectArgs()
	if err != nil {
		return err
	}
	b := handWrittenLadder(src, dirB, prof)
	r.Method = fmt.Sprintf("A %d s 1280×720 %d fps H.264/AAC file is transcoded into the default profile (%s) as fast as ffmpeg can "+
		"(no `-re`), once with the exact arguments `media.FFmpegArgs` gives the node and once with the hand-written command below. "+
		"CPU is user+sys from the child's rusage. Runs alternate A,B,B,A,… and each figure is the median.\n\n"+
		"Dionysia: `ffmpeg %s`\n\nBaseline: `ffmpeg %s`",
		transcodeSeconds, SourceFPS, ladderText(prof), shellJoin(e.Work, a), shellJoin(e.Work, b))

	var cpuA, cpuB, speedA, speedB []float64
	run := func(dir string, args []string) (cpuRun, error) {
		if err := os.RemoveAll(dir); err != nil {
			return cpuRun{}, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return cpuRun{}, err
		}
		c, err := runCPU(ctx, "ffmpeg", args...)
		if err != nil {
			return c, err
		}
		return c, checkLadder(dir, prof)
	}
	const pairs = 3
	var perRun time.Duration
	for i := range pairs {
		if i > 0 && ctxLeft(ctx) < 2*perRun+10*time.Second {
			r.note("stopped after %d pairs: the row's time budget would not fit another", i)
			break
		}
		start := time.Now()
		order := []bool{true, false}
		if i%2 == 1 {
			order = []bool{false, true}
		}
		for _, ours := range order {
			if ours {
				c, err := run(dirA, a)
				if err != nil {
					return fmt.Errorf("dionysia transcode: %w", err)
				}
				cpuA, speedA = append(cpuA, c.CPU), append(speedA, transcodeSeconds/c.Wall)
			} else {
				c, err := run(dirB, b)
				if err != nil {
					return fmt.Errorf("baseline transcode: %w", err)
				}
				cpuB, speedB = append(cpuB, c.CPU), append(speedB, transcodeSeconds/c.Wall)
			}
		}
		perRun = time.Since(start) / 2
	}
	res := r.compare("CPU seconds (user+sys) for 60 s of 720p30", "s", cpuA, cpuB, "hand-written ffmpeg", 2).headline()
	res.goal("≤ 1.03×", res.Ratio != nil && *res.Ratio <= 1.03)
	r.compare("realtime speed (media seconds per wall second)", "×", speedA, speedB, "hand-written ffmpeg", 2).headline()
	r.note("Both outputs were checked after every run: a master playlist with the 3 variants and ended media playlists with %d s target duration.", prof.SegmentSeconds)
	r.note("Differences that remain in the project's command: keyframes forced by time (`-force_key_frames expr:…`) instead of a fixed `-g` only, aspect-preserving scale, `-progress pipe:1`, epoch start numbers, `temp_file` + `program_date_time` HLS flags.")
	return nil
}

// handWrittenLadder is what a user would type for the same ladder: one
// decode, split and scale per rung, fixed GOP of one segment, same bitrates,
// same HLS segment settings.
func handWrittenLadder(src, out string, p fsm.Profile) []string {
	seg := p.SegmentSeconds
	n := len(p.Renditions)
	var g strings.Builder
	fmt.Fprintf(&g, "[0:v]split=%d", n)
	for i := range n {
		fmt.Fprintf(&g, "[s%d]", i)
	}
	g.WriteString(";")
	for i, rd := range p.Renditions {
		if i > 0 {
			g.WriteString(";")
		}
		fmt.Fprintf(&g, "[s%d]scale=%d:%d[v%d]", i, rd.Width, rd.Height, i)
	}
	gop := strconv.Itoa(SourceFPS * seg)
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "warning", "-i", src, "-filter_complex", g.String()}
	var vsm []string
	for i, rd := range p.Renditions {
		args = append(args, "-map", fmt.Sprintf("[v%d]", i), "-map", "0:a:0")
		vsm = append(vsm, fmt.Sprintf("v:%d,a:%d,name:%s", i, i, rd.Name))
	}
	args = append(args, "-c:v", "libx264", "-preset", p.VideoPreset, "-pix_fmt", "yuv420p",
		"-g", gop, "-keyint_min", gop, "-sc_threshold", "0")
	for i, rd := range p.Renditions {
		v := strconv.Itoa(i)
		args = append(args, "-b:v:"+v, kbps(rd.VideoBitrateKbps), "-maxrate:v:"+v, kbps(rd.VideoBitrateKbps),
			"-bufsize:v:"+v, kbps(2*rd.VideoBitrateKbps))
	}
	args = append(args, "-c:a", "aac", "-ac", "2", "-ar", "48000")
	for i, rd := range p.Renditions {
		args = append(args, "-b:a:"+strconv.Itoa(i), kbps(rd.AudioBitrateKbps))
	}
	args = append(args, "-f", "hls", "-hls_time", strconv.Itoa(seg), "-hls_list_size", "6",
		"-hls_flags", "delete_segments+independent_segments", "-master_pl_name", media.MasterPlaylistName,
		"-var_stream_map", strings.Join(vsm, " "),
		"-hls_segment_filename", filepath.Join(out, "%v", "seg_%d.ts"), filepath.Join(out, "%v", media.MediaPlaylistName))
	return args
}

func kbps(n int) string { return strconv.Itoa(n) + "k" }

// checkLadder verifies an output dir holds the whole ladder, ended.
func checkLadder(dir string, p fsm.Profile) error {
	f, err := os.Open(filepath.Join(dir, media.MasterPlaylistName))
	if err != nil {
		return err
	}
	vs, err := media.ParseMasterPlaylist(f)
	f.Close()
	if err != nil {
		return err
	}
	if len(vs) != len(p.Renditions) {
		return fmt.Errorf("%s: %d variants, want %d", dir, len(vs), len(p.Renditions))
	}
	for _, rd := range p.Renditions {
		f, err := os.Open(media.MediaPlaylistPath(dir, rd.Name))
		if err != nil {
			return err
		}
		mp, err := media.ParseMediaPlaylist(f)
		f.Close()
		if err != nil {
			return err
		}
		if !mp.Ended || len(mp.Segments) == 0 || mp.TargetDuration > p.SegmentSeconds+1 {
			return fmt.Errorf("%s/%s: ended=%v segments=%d target=%d", dir, rd.Name, mp.Ended, len(mp.Segments), mp.TargetDuration)
		}
	}
	return nil
}

func ladderText(p fsm.Profile) string {
	var s []string
	for _, rd := range p.Renditions {
		s = append(s, fmt.Sprintf("%s %d×%d %d kb/s", rd.Name, rd.Width, rd.Height, rd.VideoBitrateKbps))
	}
	return fmt.Sprintf("%s, x264 %s, %d s segments", strings.Join(s, " / "), p.VideoPreset, p.SegmentSeconds)
}

// shellJoin quotes arguments for display; temp paths are shortened.
func shellJoin(work string, args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		a = strings.ReplaceAll(a, work, "$WORK")
		if strings.ContainsAny(a, " ;[]'\"$*?%,:") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func ctxLeft(ctx context.Context) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Hour
	}
	return time.Until(d)
}
