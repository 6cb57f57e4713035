package hlscheck

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// pdt is the program date time line of segment n (2 s segments from t0).
func pdt(n int) string {
	return "#EXT-X-PROGRAM-DATE-TIME:" + t0.Add(time.Duration(n)*2*time.Second).Format("2006-01-02T15:04:05.000Z07:00") + "\n"
}

// seg is a 2 s segment n with its program date time.
func seg(n int) string { return pdt(n) + fmt.Sprintf("#EXTINF:2.000,\nseg%d.m4s\n", n) }

// disc puts an EXT-X-DISCONTINUITY in front of a segment.
func disc(s string) string { return "#EXT-X-DISCONTINUITY\n" + s }

// live is a fMP4 live playlist with a 2 s target duration.
func live(mediaSeq, discSeq int, lines ...string) string {
	return fmt.Sprintf("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:%d\n#EXT-X-DISCONTINUITY-SEQUENCE:%d\n#EXT-X-MAP:URI=\"init.mp4\"\n",
		mediaSeq, discSeq) + strings.Join(lines, "")
}

const endlist = "#EXT-X-ENDLIST\n"

// parts lists n byte-range parts of segment msn, 1/3 s each (the last one
// of six is shorter so a full segment is 2 s).
func parts(msn, n int) string {
	var b strings.Builder
	for i := range n {
		d, ind := "0.334", ""
		if i == 5 {
			d = "0.330"
		}
		if i == 0 {
			ind = ",INDEPENDENT=YES"
		}
		fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%s,URI=\"seg%d.m4s\",BYTERANGE=\"1000@%d\"%s\n", d, msn, i*1000, ind)
	}
	return b.String()
}

// ll is a low-latency playlist: PART-TARGET 1/3 s, PART-HOLD-BACK three
// part targets, delta updates allowed.
func ll(mediaSeq int, lines ...string) string {
	return fmt.Sprintf(`#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-PART-INF:PART-TARGET=0.334
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.002,CAN-SKIP-UNTIL=12.0
#EXT-X-MEDIA-SEQUENCE:%d
#EXT-X-MAP:URI="init.mp4"
`, mediaSeq) + strings.Join(lines, "")
}

func hint(msn, part int) string {
	return fmt.Sprintf("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg%d.m4s\",BYTERANGE-START=%d\n", msn, part*1000)
}

const report360 = `#EXT-X-RENDITION-REPORT:URI="../360p/index.m3u8",LAST-MSN=102,LAST-PART=1` + "\n"

// TestMedia feeds each case's fetches in order: every fetch but the last
// must pass, and the last must fail with want (or pass when want is empty).
func TestMedia(t *testing.T) {
	cases := []struct {
		name    string
		fetches []string
		want    string
	}{
		{
			name: "valid live window with a discontinuity passing through, then the end",
			fetches: []string{
				live(10, 0, seg(10), seg(11), seg(12)),
				live(11, 0, seg(11), seg(12), disc(seg(13)), seg(14)),
				live(13, 0, disc(seg(13)), seg(14), seg(15)),
				live(14, 1, seg(14), seg(15), seg(16)),
				live(14, 1, seg(14), seg(15), seg(16), endlist),
				live(14, 1, seg(14), seg(15), seg(16), endlist),
			},
		},
		{
			name: "a gap in the history is not judged",
			fetches: []string{
				live(20, 0, seg(20), seg(21), seg(22)),
				live(30, 5, seg(30), seg(31), seg(32)),
			},
		},
		{
			name: "media sequence goes back",
			fetches: []string{
				live(5, 0, seg(5), seg(6), seg(7)),
				live(4, 0, seg(4), seg(5), seg(6), seg(7)),
			},
			want: "EXT-X-MEDIA-SEQUENCE went back from 5 to 4",
		},
		{
			name: "a media sequence number reused for another segment",
			fetches: []string{
				live(5, 0, seg(5), seg(6), seg(7)),
				live(5, 0, seg(5), seg(6), strings.Replace(seg(7), "seg7.m4s", "restart0.m4s", 1)),
			},
			want: "media sequence 7 is restart0.m4s, was seg7.m4s in fetch 1",
		},
		{
			name: "target duration changes",
			fetches: []string{
				live(5, 0, seg(5), seg(6), seg(7)),
				strings.Replace(live(5, 0, seg(5), seg(6), seg(7), seg(8)), "TARGETDURATION:2", "TARGETDURATION:3", 1),
			},
			want: "EXT-X-TARGETDURATION changed from 2 to 3",
		},
		{
			name: "a segment longer than the target duration",
			fetches: []string{
				live(5, 0, seg(5), strings.Replace(seg(6), "EXTINF:2.000", "EXTINF:2.500", 1), seg(7)),
			},
			want: "segment 6 (seg6.m4s): EXTINF 2.500 rounds above EXT-X-TARGETDURATION 2",
		},
		{
			name: "a segment just under the rounding limit is fine",
			fetches: []string{
				live(5, 0, seg(5), strings.Replace(seg(6), "EXTINF:2.000", "EXTINF:2.499", 1), seg(7)),
			},
		},
		{
			name: "discontinuity leaves the window without an increment",
			fetches: []string{
				live(13, 0, disc(seg(13)), seg(14), seg(15)),
				live(14, 0, seg(14), seg(15), seg(16)),
			},
			want: "EXT-X-DISCONTINUITY-SEQUENCE is 0 at media sequence 14, want 1",
		},
		{
			name: "discontinuity sequence incremented with no discontinuity leaving",
			fetches: []string{
				live(13, 0, seg(13), seg(14), seg(15)),
				live(14, 1, seg(14), seg(15), seg(16)),
			},
			want: "want 0",
		},
		{
			name: "a discontinuity tag added to a segment already seen",
			fetches: []string{
				live(13, 0, seg(13), seg(14), seg(15)),
				live(13, 0, seg(13), seg(14), disc(seg(15)), seg(16)),
			},
			want: "segment 15: EXT-X-DISCONTINUITY added since fetch 1",
		},
		{
			name: "segments after ENDLIST",
			fetches: []string{
				live(5, 0, seg(5), seg(6), seg(7), endlist),
				live(5, 0, seg(5), seg(6), seg(7), seg(8), endlist),
			},
			want: "segments added after EXT-X-ENDLIST",
		},
		{
			name: "ENDLIST taken back",
			fetches: []string{
				live(5, 0, seg(5), seg(6), seg(7), endlist),
				live(5, 0, seg(5), seg(6), seg(7)),
			},
			want: "EXT-X-ENDLIST disappeared",
		},
		{
			name: "a segment without program date time",
			fetches: []string{
				live(5, 0, seg(5), strings.TrimPrefix(seg(6), pdt(6)), seg(7)),
			},
			want: "segment 6 (seg6.m4s): no EXT-X-PROGRAM-DATE-TIME",
		},
		{
			name: "program date time goes back without a discontinuity",
			fetches: []string{
				live(5, 0, seg(5), seg(6), pdt(3)+"#EXTINF:2.000,\nseg7.m4s\n"),
			},
			want: "segment 7: EXT-X-PROGRAM-DATE-TIME 2026-11-28T12:00:06Z goes back",
		},
		{
			name: "program date time may go back at a discontinuity",
			fetches: []string{
				live(5, 0, seg(5), seg(6), disc(pdt(3)+"#EXTINF:2.000,\nseg7.m4s\n")),
			},
		},
		{
			name: "program date time of a segment rewritten",
			fetches: []string{
				live(5, 0, seg(5), seg(6), seg(7)),
				live(5, 0, seg(5), pdt(7)+"#EXTINF:2.000,\nseg6.m4s\n", seg(7)),
			},
			want: "segment 6: EXT-X-PROGRAM-DATE-TIME",
		},
		{
			name: "a stale playlist after a failover",
			fetches: []string{
				live(5, 0, seg(5), seg(6), seg(7), seg(8)),
				live(5, 0, seg(5), seg(6), seg(7)),
			},
			want: "newest segment is 7, an earlier fetch already had 8",
		},
		{
			name: "shrinks to no segments while live",
			fetches: []string{
				live(5, 0, seg(5), seg(6), seg(7)),
				live(8, 0),
			},
			want: "playlist has no segments and no EXT-X-ENDLIST",
		},
		{
			name: "segments removed below three target durations",
			fetches: []string{
				live(5, 0, seg(5), seg(6), seg(7)),
				live(6, 0, seg(6), seg(7)),
			},
			want: "segments removed leaving 4.000s, less than three target durations (2)",
		},
		{
			name: "EXT-X-MAP needs version 6",
			fetches: []string{
				strings.Replace(live(5, 0, seg(5), seg(6), seg(7)), "VERSION:6", "VERSION:5", 1),
			},
			want: "EXT-X-MAP in a playlist without EXT-X-I-FRAMES-ONLY needs EXT-X-VERSION 6 or higher, playlist has 5",
		},
		{
			name: "no #EXTM3U",
			fetches: []string{
				strings.TrimPrefix(live(5, 0, seg(5), seg(6), seg(7)), "#EXTM3U\n"),
			},
			want: "first line is not #EXTM3U",
		},
		{
			name: "valid low-latency playlist growing part by part",
			fetches: []string{
				ll(100, seg(100), seg(101), pdt(102)+parts(102, 6), "#EXTINF:2.000,\nseg102.m4s\n",
					pdt(103)+parts(103, 2), hint(103, 2), report360),
				ll(100, seg(100), seg(101), pdt(102)+parts(102, 6), "#EXTINF:2.000,\nseg102.m4s\n",
					pdt(103)+parts(103, 4), hint(103, 4), report360),
				ll(101, seg(101), pdt(102)+parts(102, 6), "#EXTINF:2.000,\nseg102.m4s\n",
					pdt(103)+parts(103, 6), "#EXTINF:2.000,\nseg103.m4s\n",
					pdt(104)+parts(104, 1), hint(104, 1), report360),
			},
		},
		{
			name: "a part longer than PART-TARGET",
			fetches: []string{
				ll(100, seg(100), seg(101), seg(102), pdt(103)+parts(103, 1),
					`#EXT-X-PART:DURATION=0.400,URI="seg103.m4s",BYTERANGE="1000@1000"`+"\n", hint(103, 2)),
			},
			want: "part 103.1 (seg103.m4s): DURATION 0.400 exceeds PART-TARGET 0.334",
		},
		{
			name: "PART-TARGET changes",
			fetches: []string{
				ll(100, seg(100), seg(101), seg(102), pdt(103)+parts(103, 1)),
				strings.Replace(ll(100, seg(100), seg(101), seg(102), pdt(103)+parts(103, 2)), "PART-TARGET=0.334", "PART-TARGET=0.5", 1),
			},
			want: "PART-TARGET changed from 0.334 to 0.500",
		},
		{
			name: "PART-HOLD-BACK under two part targets",
			fetches: []string{
				strings.Replace(ll(100, seg(100), seg(101), seg(102), pdt(103)+parts(103, 1)), "PART-HOLD-BACK=1.002", "PART-HOLD-BACK=0.5", 1),
			},
			want: "PART-HOLD-BACK 0.500 is less than twice PART-TARGET 0.334",
		},
		{
			name: "parts without EXT-X-PART-INF",
			fetches: []string{
				live(100, 0, seg(100), seg(101), seg(102), pdt(103)+parts(103, 1)),
			},
			want: "EXT-X-PART without EXT-X-PART-INF",
		},
		{
			name: "two preload hints of one type",
			fetches: []string{
				ll(100, seg(100), seg(101), seg(102), pdt(103)+parts(103, 1), hint(103, 1), hint(103, 2)),
			},
			want: "more than one EXT-X-PRELOAD-HINT with TYPE=PART",
		},
		{
			name: "rendition report that does not parse",
			fetches: []string{
				ll(100, seg(100), seg(101), seg(102), `#EXT-X-RENDITION-REPORT:URI="../360p/index.m3u8",LAST-MSN=-1`+"\n"),
			},
			want: "EXT-X-RENDITION-REPORT: LAST-MSN=-1 is not a decimal-integer",
		},
		{
			name: "parts kept on a segment far from the live edge",
			fetches: []string{
				ll(100, pdt(100)+parts(100, 6), "#EXTINF:2.000,\nseg100.m4s\n", seg(101), seg(102), seg(103), seg(104), pdt(105)+parts(105, 1)),
			},
			want: "segment 100 still lists parts 10.334s from the end of the playlist",
		},
		{
			name: "a hinted segment later listed behind a discontinuity",
			fetches: []string{
				ll(100, seg(100), seg(101), seg(102), hint(103, 0)),
				ll(100, seg(100), seg(101), seg(102), disc(pdt(103)+parts(103, 1)), hint(103, 1)),
			},
			want: "segment 103 (next) follows an EXT-X-DISCONTINUITY; fetch 1, where it came next, said it follows none",
		},
		{
			name: "an older playlist read after a newer one, across a seam",
			fetches: []string{
				ll(100, seg(100), seg(101), seg(102), disc(pdt(103)+parts(103, 1)), hint(103, 1)),
				ll(100, seg(100), seg(101), seg(102), hint(103, 0)),
			},
			want: "segment 103 (next) has no EXT-X-DISCONTINUITY; fetch 1, where it came next, said it follows one",
		},
		{
			name: "valid seam said ahead of the next producer's first part",
			fetches: []string{
				ll(100, seg(100), seg(101), seg(102), "#EXT-X-DISCONTINUITY\n", hint(103, 0)),
				ll(100, seg(100), seg(101), seg(102), disc(pdt(103)+parts(103, 1)), hint(103, 1)),
				ll(100, seg(100), seg(101), seg(102), disc(pdt(103)+parts(103, 6)), "#EXTINF:2.000,\nseg103.m4s\n", pdt(104)+parts(104, 1), hint(104, 1)),
				ll(100, seg(100), seg(101), seg(102), "#EXT-X-DISCONTINUITY\n", hint(103, 0)),
			},
			want: "newest segment is 102, an earlier fetch already had 103",
		},
		{
			name: "a published part rewritten",
			fetches: []string{
				ll(100, seg(100), seg(101), seg(102), pdt(103)+parts(103, 2)),
				ll(100, seg(100), seg(101), seg(102), pdt(103)+strings.Replace(parts(103, 3), "1000@1000", "900@1000", 1)),
			},
			want: "parts of segment 103 changed",
		},
		{
			name: "delta update numbered after the skipped segments",
			fetches: []string{
				ll(100, seg(100), seg(101), seg(102), seg(103), seg(104), seg(105), seg(106)),
				ll(101, "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n", seg(104), seg(105), seg(106), seg(107)),
			},
		},
		{
			name: "delta update that miscounts skipped segments",
			fetches: []string{
				ll(100, seg(100), seg(101), seg(102), seg(103), seg(104), seg(105), seg(106)),
				ll(101, "#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n", seg(104), seg(105), seg(106), seg(107)),
			},
			want: "media sequence 103 is seg104.m4s, was seg103.m4s in fetch 1",
		},
		{
			name: "delta update without version 9",
			fetches: []string{
				strings.Replace(ll(101, "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n", seg(104), seg(105), seg(106), seg(107)), "VERSION:9", "VERSION:6", 1),
			},
			want: "EXT-X-SKIP needs EXT-X-VERSION 9 or higher, playlist has 6",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Media{Name: "720p"}
			at := t0
			for i, f := range tc.fetches {
				at = at.Add(time.Second)
				err := c.Add([]byte(f), at)
				if i < len(tc.fetches)-1 || tc.want == "" {
					require.NoError(t, err, "fetch %d:\n%s", i+1, f)
					continue
				}
				require.Error(t, err, "fetch %d:\n%s", i+1, f)
				require.Contains(t, err.Error(), tc.want)
				require.Contains(t, err.Error(), fmt.Sprintf("720p: fetch %d: ", i+1))
				require.NotEmpty(t, c.Violations())
			}
			if tc.want == "" {
				require.Empty(t, c.Violations())
			}
		})
	}
}

func TestMediaSummary(t *testing.T) {
	var c Media
	fetches := []string{
		live(10, 0, seg(10), seg(11), seg(12)),
		live(11, 0, seg(11), seg(12), disc(seg(13))),
		live(11, 0, seg(11), seg(12), disc(seg(13))),
		live(11, 0, seg(11), seg(12), disc(seg(13))),
		live(12, 0, seg(12), disc(seg(13)), seg(14)),
		live(13, 0, disc(seg(13)), seg(14), seg(15), endlist),
	}
	for i, f := range fetches {
		require.NoError(t, c.Add([]byte(f), t0.Add(time.Duration(i)*1500*time.Millisecond)))
	}
	require.Equal(t, Summary{
		Fetches:         6,
		Segments:        6,
		Discontinuities: 1,
		MaxMSN:          15,
		Ended:           true,
		LongestStall:    4500 * time.Millisecond, // seg13 first seen at 1.5 s, seg14 at 6 s
	}, c.Summary())
}

func TestMediaKeepsViolations(t *testing.T) {
	var c Media
	require.NoError(t, c.Add([]byte(live(5, 0, seg(5), seg(6), seg(7))), t0))
	require.Error(t, c.Add([]byte(live(4, 0, seg(4), seg(5), seg(6), seg(7))), t0.Add(time.Second)))
	require.Error(t, c.Add([]byte("not a playlist"), t0.Add(2*time.Second)))
	v := c.Violations()
	require.Contains(t, v[0], "fetch 2: EXT-X-MEDIA-SEQUENCE went back")
	require.Contains(t, strings.Join(v, "\n"), "fetch 3: first line is not #EXTM3U")
	require.Contains(t, strings.Join(v, "\n"), "fetch 3: EXT-X-TARGETDURATION missing")
	require.Equal(t, 3, c.Summary().Fetches)
}

func TestParseAttrs(t *testing.T) {
	a, err := parseAttrs(`BANDWIDTH=1280000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=29.970`)
	require.NoError(t, err)
	require.Equal(t, "avc1.64001f,mp4a.40.2", a.vals["CODECS"])
	require.True(t, a.quoted["CODECS"])
	require.Equal(t, "1280x720", a.vals["RESOLUTION"])
	f, ok, err := a.float("FRAME-RATE")
	require.NoError(t, err)
	require.True(t, ok)
	require.InDelta(t, 29.97, f, 1e-9)

	for _, bad := range []string{`URI="x`, `URI="x"y`, `A=1,A=2`, `lower=1`, `NOVALUE`, `A=`} {
		_, err := parseAttrs(bad)
		require.Error(t, err, bad)
	}
}

func TestMediaPartStall(t *testing.T) {
	var c Media
	fetches := []struct {
		at   time.Duration
		body string
	}{
		{0, ll(10, seg(10), parts(11, 2)+hint(11, 2))},
		{300 * time.Millisecond, ll(10, seg(10), parts(11, 3)+hint(11, 3))},
		{600 * time.Millisecond, ll(10, seg(10), parts(11, 3)+hint(11, 3))},
		{1500 * time.Millisecond, ll(10, seg(10), parts(11, 3)+hint(11, 3))},
		{1800 * time.Millisecond, ll(10, seg(10), parts(11, 5)+hint(11, 5))}, // the edge stood still 1.5 s
		{2100 * time.Millisecond, ll(10, seg(10), parts(11, 6)+seg(11), parts(12, 1)+hint(12, 1))},
	}
	for i, f := range fetches {
		require.NoError(t, c.Add([]byte(f.body), t0.Add(f.at)), "fetch %d", i+1)
	}
	s := c.Summary()
	require.Equal(t, 1500*time.Millisecond, s.LongestPartStall)
	require.Equal(t, 2100*time.Millisecond, s.LongestStall, "the newest segment is 10 until the last fetch")
}
