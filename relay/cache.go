package relay

import (
	"time"

	"github.com/pion/rtp"
)

// entry is one relayed RTP packet. Its packet is never changed after it
// is made: every client gets its own shallow copy to write (the server
// stamps its own SSRC into it).
type entry struct {
	media int // index in the served description
	pkt   *rtp.Packet
	size  int
	at    time.Time // arrival
}

// limits bound a stream's cache. A GOP longer than any of them is not
// cached: the cache is dropped and starts again at the next keyframe.
type limits struct {
	maxAge     time.Duration
	maxBytes   int
	maxPackets int
}

var defaultLimits = limits{
	maxAge:   10 * time.Second,
	maxBytes: 8 << 20,
	// Every cached packet is queued at once for a client that connects,
	// so the cache must fit in the server's write queue with room to
	// spare for the live packets that arrive while it drains.
	maxPackets: writeQueueSize / 2,
}

// gopCache keeps, in arrival order and across all medias, every packet
// since the start of the newest random access access unit (AU) of the key
// format. Before the first keyframe, or after the limits were hit, it is
// not valid and holds only the current AU of the key format (and what came
// in between), because the AU's first packets (SPS, PPS, SEI in their own
// packets) arrive before the packet that shows it is a keyframe.
type gopCache struct {
	lim    limits
	media  int // the key format's media, -1 = no cache
	pt     uint8
	codec  keyCodec
	valid  bool
	bytes  int
	list   []*entry
	auAt   int  // index in list of the current key-format AU's first packet
	auKey  bool // the current AU is a random access point
	lastTS uint32
	lastM  bool
	seen   bool // lastTS and lastM are set
	// overflows counts GOPs dropped for hitting a limit.
	overflows int

	// lead keeps what came before the current AU; leadIn is what it held
	// when the newest random access AU started: the lead-in of a copying
	// client that starts there (nil when there was too little).
	lead   leadBuffer
	leadIn []*entry
}

// newGOPCache makes a cache cut on the key format (media, pt, codec) that
// also keeps a lead-in of leadAUs access units (see lead.go).
func newGOPCache(lim limits, media int, pt uint8, codec keyCodec, leadAUs int) *gopCache {
	return &gopCache{lim: lim, media: media, pt: pt, codec: codec, lead: leadBuffer{n: leadAUs}}
}

// add appends e. keyStart is true when e made the current AU a random
// access point: the cache now starts with that AU and e is its newest
// packet, so a client waiting for a keyframe can be given the whole list.
func (c *gopCache) add(e *entry) (keyStart bool) {
	if c.media < 0 {
		return false
	}
	isKeyFormat := e.media == c.media && e.pkt.PayloadType == c.pt
	auStart := false
	if isKeyFormat {
		// An AU starts after a packet with the marker bit, or with a new
		// timestamp (RFC 6184 5.1; RFC 7798 4.1).
		if !c.seen || c.lastM || e.pkt.Timestamp != c.lastTS {
			auStart = true
			c.auAt, c.auKey = len(c.list), false
			if !c.valid {
				c.list, c.bytes, c.auAt = nil, 0, 0
			}
		}
		c.lastTS, c.lastM, c.seen = e.pkt.Timestamp, e.pkt.Marker, true
	}
	c.list = append(c.list, e)
	c.bytes += e.size
	c.lead.add(e, auStart)
	if isKeyFormat && !c.auKey && isRandomAccess(c.codec, e.pkt) {
		c.auKey, keyStart = true, true
		c.leadIn = c.lead.before()
		c.lead.markKey()
		c.trimToAU()
		c.valid = true
	}
	if c.valid && c.over(e.at) {
		c.overflows++
		c.trimToAU()
		c.valid = false
	}
	return keyStart
}

func (c *gopCache) over(now time.Time) bool {
	return c.bytes > c.lim.maxBytes || len(c.list) > c.lim.maxPackets ||
		(len(c.list) > 0 && now.Sub(c.list[0].at) > c.lim.maxAge)
}

// trimToAU drops everything before the current AU (into a new array, so
// that the dropped packets can be collected).
func (c *gopCache) trimToAU() {
	if c.auAt == 0 {
		return
	}
	kept := make([]*entry, len(c.list)-c.auAt, cap(c.list)-c.auAt)
	copy(kept, c.list[c.auAt:])
	c.list, c.auAt = kept, 0
	c.bytes = 0
	for _, e := range c.list {
		c.bytes += e.size
	}
}

// gop is what a client that connects now gets first: nil when there is no
// valid cache (it then waits for the next keyframe).
func (c *gopCache) gop() []*entry {
	if !c.valid {
		return nil
	}
	return c.list
}

// copyGOP is gop for a copying client: the lead-in, then the GOP; nil
// when either is missing (the client then waits for a keyframe with a
// lead-in).
func (c *gopCache) copyGOP() []*entry {
	if !c.valid || c.leadIn == nil {
		return nil
	}
	return append(c.leadIn[:len(c.leadIn):len(c.leadIn)], c.list...)
}

// reset forgets everything: the next packets come from a new upstream
// session, which starts anywhere in a GOP.
func (c *gopCache) reset() {
	c.list, c.bytes, c.auAt, c.auKey, c.valid, c.seen = nil, 0, 0, false, false, false
	c.lead.reset()
	c.leadIn = nil
}
