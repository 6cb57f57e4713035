package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/dionysia/dionysia/httpapi"
)

var (
	nodesCommand = subcommand{name: "nodes", summary: "list the cluster's members as the node at --addr sees them", run: runNodesCmd}
	clusterCmd   = subcommand{name: "cluster", summary: "show the raft leader, raft servers and members", run: runClusterCmd}
	statusCmd    = subcommand{name: "status", args: "<input>", summary: "show whether an input is live, where, and its transcoder stats", run: runStatusCmd}
)

var (
	drainCmd = subcommand{name: "drain", args: "<node>", run: func(c *cli, args []string) error { return runDrainCmd(c, args, true) },
		summary: "move every stream off a node (make-before-break) and start no new ones there"}
	undrainCmd = subcommand{name: "undrain", args: "<node>", run: func(c *cli, args []string) error { return runDrainCmd(c, args, false) },
		summary: "let a drained node own streams again"}
)

func runNodes(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "drain":
			return runOne("dionysia nodes drain", drainCmd, args[1:], stdout, stderr)
		case "undrain":
			return runOne("dionysia nodes undrain", undrainCmd, args[1:], stdout, stderr)
		}
	}
	return runOne("dionysia nodes", nodesCommand, args, stdout, stderr)
}

func runDrainCmd(c *cli, args []string, on bool) error {
	pos, err := c.parse(args, "<node>")
	if err != nil {
		return err
	}
	verb := "undrain"
	if on {
		verb = "drain"
	}
	var n httpapi.NodeInfo
	raw, err := c.client.doJSON(c.ctx(), "POST", "/v1/nodes/"+url.PathEscape(pos[0])+"/"+verb, nil, &n)
	if err != nil {
		return err
	}
	if c.asJSON {
		return c.printJSON(raw)
	}
	if on {
		fmt.Fprintf(c.stdout, "node %s is draining: its streams move to other nodes without a gap; new ones start elsewhere\n", n.Name)
	} else {
		fmt.Fprintf(c.stdout, "node %s takes streams again\n", n.Name)
	}
	return nil
}

func runCluster(args []string, stdout, stderr io.Writer) int {
	return runOne("dionysia cluster", clusterCmd, args, stdout, stderr)
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	return runOne("dionysia status", statusCmd, args, stdout, stderr)
}

func runNodesCmd(c *cli, args []string) error {
	if _, err := c.parse(args); err != nil {
		return err
	}
	var out struct {
		Nodes []httpapi.NodeInfo `json:"nodes"`
	}
	raw, err := c.client.getJSON(c.ctx(), "/v1/nodes", &out)
	if err != nil {
		return err
	}
	if c.asJSON {
		return c.printJSON(raw)
	}
	return writeMembers(c.stdout, out.Nodes)
}

// writeMembers is the members table of `nodes` and `cluster`. Stream lists
// are counted: `--json` has the ids.
func writeMembers(w io.Writer, nodes []httpapi.NodeInfo) error {
	t := newTable(w, "NAME", "STATE", "RAFT", "HTTP", "RTMP", "SRT", "RTSP", "LOAD", "COST/CAPACITY", "OWNED", "LIVE", "INGESTING")
	for _, n := range nodes {
		name := n.Name
		if n.Local {
			name += " (this)"
		}
		state := n.State
		if n.Draining {
			state += ",draining"
		}
		t.row(name, state, n.RaftRole, n.HTTPAddr, n.RTMPAddr, n.SRTAddr, n.RTSPAddr, itoa(n.Load),
			costOf(n), itoa(len(n.Owned)), itoa(len(n.LiveOwned)), itoa(len(n.IngestLive)))
	}
	return t.flush()
}

// costOf shows what a node's streams cost against what it offers, in cost
// units, with the share.
func costOf(n httpapi.NodeInfo) string {
	if n.Capacity <= 0 {
		return itoa(n.Cost) + "/?"
	}
	return fmt.Sprintf("%d/%d (%d%%)", n.Cost, n.Capacity, n.Cost*100/n.Capacity)
}

func runClusterCmd(c *cli, args []string) error {
	if _, err := c.parse(args); err != nil {
		return err
	}
	var ci httpapi.ClusterInfo
	raw, err := c.client.getJSON(c.ctx(), "/v1/cluster", &ci)
	if err != nil {
		return err
	}
	if c.asJSON {
		return c.printJSON(raw)
	}
	f := newFields(c.stdout)
	f.add("Node", ci.Node)
	leader := ci.Leader
	if leader == "" {
		leader = "(none: election under way or no quorum)"
	}
	f.add("Leader", leader)
	if m, ok := ci.Raft.(map[string]any); ok && len(m) > 0 {
		f.add("Raft", sortedPairs(m))
	}
	if err := f.flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout)
	t := newTable(c.stdout, "RAFT SERVER", "ADDRESS", "SUFFRAGE")
	for _, s := range ci.Servers {
		t.row(s.ID, s.Address, s.Suffrage)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout)
	return writeMembers(c.stdout, ci.Members)
}

func runStatusCmd(c *cli, args []string) error {
	pos, err := c.parse(args, "<input>")
	if err != nil {
		return err
	}
	var st httpapi.InputStatus
	raw, err := c.client.getJSON(c.ctx(), "/v1/inputs/"+pathID(pos[0])+"/status", &st)
	if err != nil {
		return err
	}
	if c.asJSON {
		return c.printJSON(raw)
	}
	f := newFields(c.stdout)
	f.add("Input", st.InputID)
	f.add("Live", yesNo(st.Live))
	if st.State != "" {
		f.add("State", st.State)
	}
	if st.ReconnectDeadline != nil {
		f.add("Reconnect until", formatTime(*st.ReconnectDeadline))
	}
	f.add("Ingest node", st.IngestNode)
	f.add("Owner node", st.OwnerNode)
	if st.Cost > 0 {
		cost := itoa(st.Cost) + " units"
		if st.Passthrough {
			cost += " (carried as passthrough: no node had room for the ladder)"
		}
		f.add("Cost", cost)
	}
	if st.Refused != nil {
		f.add("Last refused", fmt.Sprintf("%s: %s", formatTime(st.Refused.At), st.Refused.Reason))
	}
	f.add("Protocol", st.Protocol)
	if st.StartedAt != nil {
		f.add("Started", fmt.Sprintf("%s (%s ago)", formatTime(*st.StartedAt), time.Since(*st.StartedAt).Round(time.Second)))
	}
	if tr := st.Transcoder; tr != nil {
		state := "stopped"
		if tr.Running {
			state = "running"
		}
		parts := []string{state, formatFloat(tr.FPS) + " fps", formatFloat(tr.Speed) + "x"}
		// ffmpeg reports no total bitrate for HLS output; the per-rendition
		// table below has the real figures.
		if tr.BitrateKbps > 0 {
			parts = append(parts, formatFloat(tr.BitrateKbps)+" kbps")
		}
		parts = append(parts,
			fmt.Sprintf("%d frames", tr.Frames),
			fmt.Sprintf("%d dropped", tr.DropFrames),
			fmt.Sprintf("%d restarts", tr.Restarts))
		f.add("Transcoder", strings.Join(parts, ", "))
	}
	if pk := st.Packaging; pk != nil {
		mode := pk.Latency + " latency, " + pk.SegmentFormat
		if pk.PartMs > 0 {
			mode += fmt.Sprintf(", %d ms parts (LL-HLS, LL-DASH)", pk.PartMs)
		}
		f.add("Packaging", mode)
		if pk.SourceWidth > 0 {
			f.add("Source", fmt.Sprintf("%dx%d at %s fps", pk.SourceWidth, pk.SourceHeight, formatFloat(pk.SourceFPS)))
		}
		for _, sk := range pk.Skipped {
			f.add("Left out", sk.Name+": "+sk.Reason)
		}
	}
	if err := f.flush(); err != nil {
		return err
	}
	if len(st.Renditions) == 0 {
		return nil
	}
	fmt.Fprintln(c.stdout)
	t := newTable(c.stdout, "RENDITION", "SIZE", "FPS", "KBPS", "SEGMENTS", "MEDIA SEQ")
	for _, r := range st.Renditions {
		size := ""
		if r.Width > 0 && r.Height > 0 {
			size = fmt.Sprintf("%dx%d", r.Width, r.Height)
		}
		t.row(r.Name, size, formatFloat(r.FPS), formatFloat(r.BitrateKbps), itoa(r.Segments), fmt.Sprint(r.MediaSequence))
	}
	return t.flush()
}
