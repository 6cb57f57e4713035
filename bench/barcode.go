package bench

// The generated sources carry their frame number in the picture: a band
// over the top 1/barcodeBandDiv of the frame split into barcodeBits blocks,
// block X white when bit X of the frame number is set. The blocks are large
// (80 px wide at 720p, 40 px at 360p) so the number survives scaling and
// x264 at ladder bitrates, and reading it back needs no OCR: the latency
// row's page (glass.js) draws the band onto a small canvas, averages the
// middle of each block and thresholds it.
const (
	barcodeBits    = 16 // 65536 frames: 36 minutes at 30 fps
	barcodeBandDiv = 9
)
